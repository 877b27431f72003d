# Drop-in replacements for nixpkgs' dockerTools.streamLayeredImage family.
#
# Same arguments, defaults, assertions, derivation names and passthru as the
# newest nixpkgs; the work is done by the `layered-image` binary:
#   customisation layer  -> layered-image customisation-layer   (was GNU tar)
#   layering + conf.json -> layered-image conf                  (was auto-layer.py /
#                                                                flatten_references_graph + jq)
#   streaming            -> layered-image stream                (was stream_layered_image.py)
# This file only wires derivations together; all logic lives in Rust.
{
  pkgs,
  layered-image ? pkgs.buildPackages.layered-image,
}:

let
  inherit (pkgs)
    lib
    runCommand
    symlinkJoin
    writeText
    ;
  inherit (lib) optionals optionalString;

  storeDir = builtins.storeDir;
  exe = "${layered-image}/bin/layered-image";

  # Scripts that run on the build machine (the stream executable, which
  # also runs wherever the image is streamed, streamScript, copyTo) use the
  # build platform's shell, as nixpkgs' do: a cross-compiled image's
  # scripts must run where it is built.
  buildShell = pkgs.buildPackages.runtimeShell;

  # As nixpkgs: the OCI spec recommends Go's GOARCH names.
  defaultArchitecture = pkgs.go.GOARCH;

  mkDbExtraCommand =
    contents:
    let
      contentsList = if builtins.isList contents then contents else [ contents ];
    in
    ''
      echo "Generating the nix database..."
      echo "Warning: only the database of the deepest Nix layer is loaded."
      echo "         If you want to use nix commands in the container, it would"
      echo "         be better to only have one layer that contains a nix store."

      export NIX_REMOTE=local?root=$PWD
      # A user is required by nix
      export USER=nobody
      ${pkgs.buildPackages.nix}/bin/nix-store --load-db < ${
        pkgs.closureInfo { rootPaths = contentsList; }
      }/registration
      # Reset registration times to make the image reproducible
      ${pkgs.buildPackages.sqlite}/bin/sqlite3 nix/var/nix/db/db.sqlite "UPDATE ValidPaths SET registrationTime = ''${SOURCE_DATE_EPOCH}"

      mkdir -p nix/var/nix/gcroots/docker/
      for i in ${lib.concatStringsSep " " contentsList}; do
      ln -s $i nix/var/nix/gcroots/docker/$(basename $i)
      done;
    '';

  compressors = {
    none = {
      ext = "";
      compress = "cat";
    };
    gz = {
      ext = ".gz";
      compress = "${pkgs.buildPackages.pigz}/bin/pigz -p$NIX_BUILD_CORES -nTR";
    };
    zstd = {
      ext = ".zst";
      compress = "${pkgs.buildPackages.zstd}/bin/zstd -T$NIX_BUILD_CORES";
    };
  };

  compressorForImage =
    compressor: imageName:
    compressors.${compressor}
      or (throw "in docker image ${imageName}: compressor must be one of: [${toString (builtins.attrNames compressors)}]");

  # `layered-image stream CONF "$@"`, for users of passthru.streamScript.
  streamScript = pkgs.writeScript "stream" ''
    #!${buildShell}
    exec ${exe} stream "$@"
  '';

  streamLayeredImage = lib.makeOverridable (
    {
      name,
      tag ? null,
      fromImage ? null,
      contents ? [ ],
      config ? { },
      architecture ? defaultArchitecture,
      created ? "1970-01-01T00:00:01Z",
      mtime ? "1970-01-01T00:00:01Z",
      uid ? 0,
      gid ? 0,
      uname ? "root",
      gname ? "root",
      maxLayers ? 100,
      extraCommands ? "",
      fakeRootCommands ? "",
      enableFakechroot ? false,
      includeStorePaths ? true,
      includeNixDB ? false,
      passthru ? { },
      meta ? { },
      layeringPipeline ? null,
      debug ? false,
      # layered-image's own: hash every store layer once at build time and
      # record the digests in the conf, so that each run of the result reads
      # every layer once instead of twice (still verified while streaming).
      # The image is the same either way.
      precomputeLayerDigests ? false,
      # layered-image's own: how layer blobs are compressed when the image
      # is written in OCI form (passthru.copyTo, buildLayeredImage's
      # format = "oci") and, with precomputeLayerDigests, which compressed
      # digests the conf records: "gzip", "zstd" or "none".
      layerCompression ? "gzip",
      # layered-image's own (nix2container's): layers made by buildLayer,
      # placed first (each preceded by the layers nested in it); the rest
      # of the closure is layered as usual without their paths. Each keeps
      # the digests its own derivation computed.
      layers ? [ ],
    }:
    assert (
      lib.assertMsg (layeringPipeline == null -> maxLayers > 1)
        "the maxLayers argument of dockerTools.buildLayeredImage function must be greather than 1 (current value: ${toString maxLayers})"
    );
    assert (
      lib.assertMsg (enableFakechroot -> !pkgs.stdenv.hostPlatform.isDarwin) ''
        cannot use `enableFakechroot` because `proot` is not portable to Darwin. Workarounds:
              - use `fakeRootCommands` with the restricted `fakeroot` environment
              - cross-compile your packages
              - run your packages in a virtual machine
        Discussion: https://github.com/NixOS/nixpkgs/issues/327311''
    );
    let
      baseName = baseNameOf name;
      imageName = lib.toLower name;
      # Digests of layers whose mtime is "now" would be stale at once.
      precompute = precomputeLayerDigests && mtime != "now";
      compressArgs = "--compress ${lib.escapeShellArg layerCompression}";
      digestsCompress = optionalString (layerCompression != "none") compressArgs;

      # The conf the copy scripts use: with every layer's digests (and its
      # compressed blob's), computed once by a derivation of its own, so
      # that re-pushing an unchanged image after `nix build` reads no layer.
      # (Not for mtime = "now", whose digests would be stale at once.)
      copyConf =
        if precompute || mtime == "now" then
          conf
        else
          runCommand "${baseName}-conf-digests.json" { preferLocalBuild = true; } ''
            ${exe} digests ${conf} ${digestsCompress} -o $out
          '';

      # A runnable script (`nix run .#image.copyTo -- oci:./out:latest`):
      # `layered-image copy` of this image, `dest` in front of the user's
      # arguments (or none: then the user names the destination).
      copyScript =
        name: dest:
        runCommand "${name}-${baseName}" { meta.mainProgram = name; } ''
          mkdir -p $out/bin
          cat > $out/bin/${name} <<'EOF'
          #!${buildShell}
          export LAYERED_IMAGE_COMPRESS=''${LAYERED_IMAGE_COMPRESS:-${layerCompression}}
          ${dest}
          exec ${exe} copy ${copyConf} "$@"
          EOF
          chmod +x $out/bin/${name}
        '';
      imageRef = "${imageName}:${conf.imageTag}";
      copyTo = copyScript "copy-to" "";
      copyToRegistry = copyScript "copy-to-registry" ''set -- "docker://${imageRef}" "$@"'';
      copyToDockerDaemon = copyScript "copy-to-docker-daemon" ''set -- "docker-daemon:${imageRef}" "$@"'';
      # podman's Docker-compatible service: $CONTAINER_HOST, else the
      # user's socket, else the system one.
      copyToPodman = copyScript "copy-to-podman" ''
        if [ -n "''${CONTAINER_HOST:-}" ]; then export DOCKER_HOST=$CONTAINER_HOST
        elif [ -S "''${XDG_RUNTIME_DIR:-/nonexistent}/podman/podman.sock" ]; then export DOCKER_HOST=unix://$XDG_RUNTIME_DIR/podman/podman.sock
        else export DOCKER_HOST=unix:///run/podman/podman.sock; fi
        set -- "docker-daemon:${imageRef}" "$@"'';

      # config's string context makes every store path it mentions part of
      # the image's closure.
      baseJson = writeText "${baseName}-base.json" (
        builtins.toJSON {
          inherit config architecture;
          os = "linux";
        }
      );

      contentsList = if builtins.isList contents then contents else [ contents ];

      bind-paths = builtins.toString (
        builtins.map (path: "--bind=${path}:${path}!") [
          "/dev/"
          "/proc/"
          "/sys/"
          "${storeDir}/"
          "$NIX_BUILD_TOP"
          "$out"
        ]
      );

      # The customisation layer is stored as a tarball (plus its sha256), so
      # that permissions and owners set by extraCommands/fakeRootCommands
      # survive. The tar is written by layered-image under fakeroot with the
      # bytes GNU tar --sort=name --numeric-owner --hard-dereference
      # --mtime=@$SOURCE_DATE_EPOCH would write.
      customisationLayer = symlinkJoin {
        name = "${baseName}-customisation-layer";
        paths = contentsList;
        extraCommands = (optionalString includeNixDB (mkDbExtraCommand contents)) + extraCommands;
        inherit fakeRootCommands;
        nativeBuildInputs = [ pkgs.buildPackages.fakeroot ] ++ optionals enableFakechroot [ pkgs.buildPackages.proot ];
        postBuild = ''
          mv $out old_out
          (cd old_out; eval "$extraCommands" )

          mkdir $out
          ${
            if enableFakechroot then
              ''
                proot -r $PWD/old_out ${bind-paths} --pwd=/ fakeroot bash -e -c '
                  if [ -e "$NIX_ATTRS_SH_FILE" ]; then . "$NIX_ATTRS_SH_FILE"; fi
                  source $stdenv/setup
                  eval "$fakeRootCommands"
                  ${exe} customisation-layer / "$out" --mtime "$SOURCE_DATE_EPOCH" \
                    --exclude ./dev --exclude ./proc --exclude ./sys \
                    --exclude .${storeDir} --exclude ."$NIX_BUILD_TOP"
                '
              ''
            else
              ''
                fakeroot bash -e -c '
                  if [ -e "$NIX_ATTRS_SH_FILE" ]; then . "$NIX_ATTRS_SH_FILE"; fi
                  source $stdenv/setup
                  cd old_out
                  eval "$fakeRootCommands"
                  ${exe} customisation-layer . "$out" --mtime "$SOURCE_DATE_EPOCH"
                '
              ''
          }
        '';
      };

      # Exactly what nixpkgs feeds its layering step: the closure of the base
      # JSON (config) and of the customisation layer, minus those two.
      closureRoots = optionals includeStorePaths [
        baseJson
        customisationLayer
      ];
      excludePaths = [
        baseJson
        customisationLayer
      ];

      # A Nix list is serialised (store paths in it keep their context); a
      # path or derivation is taken to be a JSON file already.
      pipelineFile =
        if builtins.isList layeringPipeline then
          writeText "${baseName}-layering-pipeline.json" (builtins.toJSON layeringPipeline)
        else
          layeringPipeline;

      layeringArgs =
        if layeringPipeline == null then
          [
            "--layering"
            "auto"
            "--max-layers"
            (toString maxLayers)
          ]
        else
          [
            "--layering"
            "pipeline"
            "--pipeline"
            "${pipelineFile}"
          ];

      # As nixpkgs' conf derivation: its inputs are attributes (and so
      # shell variables), and imageTag carries no string context, so that
      # using the tag does not pull the image into a closure.
      conf =
        runCommand "${baseName}-conf.json"
          {
            __structuredAttrs = true;
            exportReferencesGraph.graph = closureRoots;
            inherit
              fromImage
              created
              mtime
              uid
              gid
              uname
              gname
              imageName
              ;
            preferLocalBuild = true;
            passthru.imageTag =
              if tag != null then
                tag
              else
                lib.head (lib.splitString "-" (baseNameOf (builtins.unsafeDiscardStringContext conf.outPath)));
          }
          ''
            out=${placeholder "out"}
            ${
              if tag == null then
                ''
                  outName=''${out##*/}
                  imageTag=''${outName%%-*}
                ''
              else
                ''
                  imageTag=${lib.escapeShellArg tag}
                ''
            }
            ${if precompute then "confOut=conf-no-digests.json" else "confOut=$out"}
            ${exe} conf \
              --graph "''${NIX_ATTRS_JSON_FILE:-.attrs.json}" --graph-key graph \
              --base-json ${baseJson} \
              --customisation-layer ${customisationLayer} \
              --image-name "$imageName" --image-tag "$imageTag" \
              --store-dir ${storeDir} \
              ${optionalString (fromImage != null) "--from-image \"$fromImage\""} \
              --created "$created" --mtime "$mtime" \
              --uid "$uid" --gid "$gid" --uname "$uname" --gname "$gname" \
              ${lib.escapeShellArgs layeringArgs} \
              ${lib.concatMapStringsSep " " (p: "--exclude ${p}") excludePaths} \
              ${lib.concatMapStringsSep " " (l: "--layer ${l}") layers} \
              ${optionalString debug "--debug"} \
              -o "$confOut"
            ${optionalString precompute "${exe} digests \"$confOut\" ${digestsCompress} -o \"$out\""}
          '';

      result =
        runCommand "stream-${baseName}"
          {
            inherit conf streamScript;
            inherit (conf) imageName;
            preferLocalBuild = true;
            passthru = passthru // {
              inherit (conf) imageTag;
              inherit
                conf
                streamScript
                copyConf
                copyTo
                copyToRegistry
                copyToDockerDaemon
                copyToPodman
                ;

              # Distinguish tarballs and exes at the Nix level so functions that
              # take images can know in advance how the image is supposed to be used.
              isExe = true;
            };
            inherit meta;
          }
          ''
            cat > $out <<'EOF'
            #!${buildShell}
            exec ${exe} stream ${conf} "$@"
            EOF
            chmod +x $out
          '';
    in
    result
  );

  # layered-image's own, as nix2container's buildLayer: a layer known when
  # Nix evaluates, made by a derivation whose inputs are only its store
  # paths and what changes its bytes, so that its digests are computed
  # once and kept by Nix and its binary caches, and shared by every image
  # that uses it. Its paths are the closure of `contents` less the paths
  # of the `layers` nested in it. Use the image's uid, gid, uname, gname
  # and mtime (the defaults match the image's), or the image recomputes
  # the layer's digests.
  buildLayer =
    {
      contents ? [ ],
      layers ? [ ],
      name ? "layer",
      uid ? 0,
      gid ? 0,
      uname ? "root",
      gname ? "root",
      mtime ? "1970-01-01T00:00:01Z",
      layerCompression ? "gzip",
    }:
    runCommand "${name}.json"
      {
        __structuredAttrs = true;
        exportReferencesGraph.graph = if builtins.isList contents then contents else [ contents ];
        preferLocalBuild = true;
      }
      ''
        ${exe} layer --graph "''${NIX_ATTRS_JSON_FILE:-.attrs.json}" --graph-key graph \
          ${lib.concatMapStringsSep " " (l: "--layer ${l}") layers} \
          --store-dir ${storeDir} --uid ${toString uid} --gid ${toString gid} \
          --uname ${lib.escapeShellArg uname} --gname ${lib.escapeShellArg gname} \
          --mtime ${lib.escapeShellArg mtime} --compress ${lib.escapeShellArg layerCompression} \
          -o ${placeholder "out"}
      '';

  # layered-image's own: one script that pushes a multi-platform image —
  # an OCI image index naming the `images` (built for several systems) by
  # platform — as no Nix tool does today:
  #   nix run .#multi -- [DEST] [OPTIONS...]   (DEST: docker://NAME:TAG of the first image)
  copyIndex =
    {
      images,
      name ? (lib.head images).imageName,
      tag ? (lib.head images).imageTag,
      layerCompression ? "gzip",
    }:
    runCommand "copy-index-${baseNameOf name}" { meta.mainProgram = "copy-index"; } ''
      mkdir -p $out/bin
      cat > $out/bin/copy-index <<'EOF'
      #!${buildShell}
      case "''${1:-}" in "" | -*) dest=${lib.escapeShellArg "docker://${name}:${tag}"} ;; *) dest=$1; shift ;; esac
      export LAYERED_IMAGE_COMPRESS=''${LAYERED_IMAGE_COMPRESS:-${layerCompression}}
      exec ${exe} copy --index ${lib.concatMapStringsSep " " (i: "${i.copyConf}") images} "$dest" "$@"
      EOF
      chmod +x $out/bin/copy-index
    '';

  # nixpkgs' compressor names, as layer compressions of an OCI layout.
  ociCompressions = {
    none = "none";
    gz = "gzip";
    zstd = "zstd";
  };

  buildLayeredImage = lib.makeOverridable (
    {
      name,
      compressor ? "gz",
      # layered-image's own: "oci" makes the output an OCI image layout
      # (a directory; layers compressed with `compressor`, the image named
      # by its tag) instead of a compressed docker-archive.
      format ? "docker-archive",
      ...
    }@args:
    let
      compress = compressorForImage compressor name;
      layerCompression = ociCompressions.${compressor};
      stream = streamLayeredImage (
        builtins.removeAttrs args [
          "compressor"
          "format"
          "meta"
        ]
        // lib.optionalAttrs (format == "oci") { inherit layerCompression; }
      );
      passthru = {
        inherit (stream)
          imageTag
          copyConf
          copyTo
          copyToRegistry
          copyToDockerDaemon
          copyToPodman
          ;
        inherit stream;
      };
    in
    assert lib.assertMsg (builtins.elem format [
      "docker-archive"
      "oci"
    ]) "in docker image ${name}: format must be one of: [docker-archive oci]";
    if format == "oci" then
      runCommand "${baseNameOf name}-oci" {
        inherit (stream) imageName;
        inherit passthru;
        meta = args.meta or { };
      } "${exe} copy ${stream.conf} oci:$out:${lib.escapeShellArg stream.imageTag} --compress ${layerCompression}"
    else
      runCommand "${baseNameOf name}.tar${compress.ext}" {
        inherit (stream) imageName;
        inherit passthru;
        meta = args.meta or { };
      } "${stream} | ${compress.compress} > $out"
  );

  buildLayeredImageWithNixDb = args: buildLayeredImage (args // { includeNixDB = true; });

  # A docker image that behaves like `nix-shell` for a derivation; as nixpkgs,
  # on top of streamLayeredImage (here: the layered-image one).
  streamNixShellImage =
    {
      drv,
      name ? drv.name + "-env",
      tag ? null,
      uid ? 1000,
      gid ? 1000,
      homeDirectory ? "/build",
      shell ? pkgs.bashInteractive + "/bin/bash",
      command ? null,
      run ? null,
    }:
    assert lib.assertMsg (!(drv.drvAttrs.__structuredAttrs or false))
      "streamNixShellImage: Does not work with the derivation ${drv.name} because it uses __structuredAttrs";
    assert lib.assertMsg (
      command == null || run == null
    ) "streamNixShellImage: Can't specify both command and run";
    let
      # Like Nix itself turns derivation attributes into environment
      # variables (path literals are copied to the store).
      valueToString =
        value:
        if builtins.typeOf value == "path" then
          "${value}"
        else if builtins.isList value then
          toString (map valueToString value)
        else
          toString value;

      builder = pkgs.writeShellScriptBin "buildDerivation" ''
        exec ${lib.escapeShellArg (valueToString drv.drvAttrs.builder)} ${
          lib.escapeShellArgs (map valueToString (drv.drvAttrs.args or [ ]))
        }
      '';

      staticPath = "${dirOf shell}:${lib.makeBinPath [ builder ]}";

      # https://github.com/NixOS/nix/blob/2.8.0/src/nix-build/nix-build.cc#L493-L526
      rcfile = writeText "nix-shell-rc" ''
        unset PATH
        dontAddDisableDepTrack=1
        [ -e $stdenv/setup ] && source $stdenv/setup
        PATH=${staticPath}:"$PATH"
        SHELL=${lib.escapeShellArg shell}
        BASH=${lib.escapeShellArg shell}
        set +e
        [ -n "$PS1" -a -z "$NIX_SHELL_PRESERVE_PROMPT" ] && PS1='\n\[\033[1;32m\][nix-shell:\w]\$\[\033[0m\] '
        if [ "$(type -t runHook)" = function ]; then
          runHook shellHook
        fi
        unset NIX_ENFORCE_PURITY
        shopt -u nullglob
        shopt -s execfail
        ${optionalString (command != null || run != null) ''
          ${optionalString (command != null) command}
          ${optionalString (run != null) run}
          exit
        ''}
      '';

      sandboxBuildDir = "/build";

      drvEnv =
        if pkgs ? devShellTools.unstructuredDerivationInputEnv then
          pkgs.devShellTools.unstructuredDerivationInputEnv { inherit (drv) drvAttrs; }
          // pkgs.devShellTools.derivationOutputEnv {
            outputList = drv.outputs;
            outputMap = drv;
          }
        else
          lib.mapAttrs' (
            name: value:
            let
              str = valueToString value;
            in
            if lib.elem name (drv.drvAttrs.passAsFile or [ ]) then
              lib.nameValuePair "${name}Path" (writeText "pass-as-text-${name}" str)
            else
              lib.nameValuePair name str
          ) drv.drvAttrs
          // lib.genAttrs drv.outputs (output: builtins.unsafeDiscardStringContext drv.${output}.outPath);

      envVars = {
        SSL_CERT_FILE = "${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt";
        NIX_SSL_CERT_FILE = "${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt";
        PATH = staticPath;
        HOME = homeDirectory;
        NIX_STORE = storeDir;
        NIX_BUILD_CORES = "1";
      }
      // drvEnv
      // {
        NIX_BUILD_TOP = sandboxBuildDir;
        TMPDIR = sandboxBuildDir;
        TEMPDIR = sandboxBuildDir;
        TMP = sandboxBuildDir;
        TEMP = sandboxBuildDir;
        PWD = sandboxBuildDir;
        TERM = "xterm-256color";
      };
    in
    streamLayeredImage {
      inherit name tag;
      contents = [
        pkgs.dockerTools.binSh
        pkgs.dockerTools.usrBinEnv
        (pkgs.dockerTools.fakeNss.override {
          extraPasswdLines = [
            "nixbld:x:${toString uid}:${toString gid}:Build user:${homeDirectory}:/noshell"
          ];
          extraGroupLines = [ "nixbld:!:${toString gid}:" ];
        })
      ];

      fakeRootCommands = ''
        # Effectively a single-user installation of Nix, giving the user full
        # control over the Nix store.
        mkdir -p ./nix/{store,var/nix} ./etc/nix
        chown -R ${toString uid}:${toString gid} ./nix ./etc/nix

        # Gives the user control over the build directory
        mkdir -p .${sandboxBuildDir}
        chown -R ${toString uid}:${toString gid} .${sandboxBuildDir}
      '';

      config.User = "${toString uid}:${toString gid}";
      config.Cmd = if run == null then [ shell "--rcfile" rcfile ] else [ shell rcfile ];
      config.WorkingDir = sandboxBuildDir;
      config.Env = lib.mapAttrsToList (name: value: "${name}=${value}") envVars;
    };

  buildNixShellImage =
    {
      drv,
      compressor ? "gz",
      ...
    }@args:
    let
      stream = streamNixShellImage (builtins.removeAttrs args [ "compressor" ]);
      compress = compressorForImage compressor drv.name;
    in
    runCommand "${drv.name}-env.tar${compress.ext}" {
      inherit (stream) imageName;
      passthru = { inherit (stream) imageTag; };
    } "${stream} | ${compress.compress} > $out";
in
{
  inherit
    buildLayer
    copyIndex
    streamLayeredImage
    buildLayeredImage
    buildLayeredImageWithNixDb
    streamNixShellImage
    buildNixShellImage
    ;
}
