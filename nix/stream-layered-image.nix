# dockerTools.streamLayeredImage: same arguments, defaults, assertions,
# derivation names and passthru as the newest nixpkgs; the work is done by
# the layered-image binary:
#   customisation layer  -> layered-image customisation-layer   (was GNU tar)
#   layering + conf.json -> layered-image conf                  (was auto-layer.py /
#                                                                flatten_references_graph + jq)
#   streaming            -> layered-image stream                (was stream_layered_image.py)
{
  lib,
  stdenv,
  runCommand,
  symlinkJoin,
  writeText,
  fakeroot,
  proot,
  storeDir,
  exe,
  buildShell,
  defaultArchitecture,
  defaultVariant,
  mkDbExtraCommand,
  streamScript,
  copyScript,
  sbomDocument,
  explainScript,
}:
lib.makeOverridable (
  {
    name,
    tag ? null,
    fromImage ? null,
    contents ? [ ],
    config ? { },
    architecture ? defaultArchitecture,
    # As newer nixpkgs: "v7" on 32-bit ARM (from GOARM), "" elsewhere;
    # written into the base json (so the conf) and, when not "", the
    # image config.
    variant ? defaultVariant,
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
    # layered-image's own (docs/perms.md): owners and modes per store path,
    # in nix2container's shape, and accounts written in one more layer.
    perms ? [ ],
    users ? [ ],
    # layered-image's own: more tags for passthru.copyToRegistry, which
    # uploads the blobs once and puts the manifest under `tag` and each
    # of these (`--additional-tag`).
    extraTags ? [ ],
    # layered-image's own: "spdx" or "cyclonedx" builds the image's SBOM
    # (from its exact closure graph) in a derivation of its own, exposed
    # as passthru.sbom. The image is the same either way.
    sbom ? null,
  }:
  assert (
    lib.assertMsg (layeringPipeline == null -> maxLayers > 1)
      "the maxLayers argument of dockerTools.buildLayeredImage function must be greather than 1 (current value: ${toString maxLayers})"
  );
  assert (
    lib.assertMsg (enableFakechroot -> !stdenv.hostPlatform.isDarwin) ''
      cannot use `enableFakechroot` because `proot` is not portable to Darwin. Workarounds:
            - use `fakeRootCommands` with the restricted `fakeroot` environment
            - cross-compile your packages
            - run your packages in a virtual machine
      Discussion: https://github.com/NixOS/nixpkgs/issues/327311''
  );
  let
    inherit (lib) optionals optionalString;
    baseName = baseNameOf name;
    nonRoot = import ./users.nix { inherit lib; };
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

    imageRef = "${imageName}:${conf.imageTag}";
    tagArgs = lib.concatMapStrings (t: " --additional-tag ${lib.escapeShellArg t}") extraTags;
    copy =
      name: dest:
      copyScript {
        inherit
          name
          dest
          baseName
          layerCompression
          ;
        conf = copyConf;
      };
    # Ours; a user's passthru of the same name wins.
    copyPassthru = lib.optionalAttrs (sbom != null) {
      sbom = sbomDocument {
        inherit
          baseName
          conf
          closureRoots
          contents
          ;
        format = sbom;
      };
    }
    // {
      inherit copyConf;
      copyTo = copy "copy-to" "";
      copyToRegistry = copy "copy-to-registry" ''set -- "docker://${imageRef}"${tagArgs} "$@"'';
      copyToDockerDaemon = copy "copy-to-docker-daemon" ''set -- "docker-daemon:${imageRef}" "$@"'';
      # podman's Docker-compatible service, found by the binary as
      # podman's clients find it ($CONTAINER_HOST, the user's socket, the
      # system's)
      copyToPodman = copy "copy-to-podman" ''set -- "docker-daemon:${imageRef}" --engine podman "$@"'';
      # `nix run .#image.explain [-- FILE]`: what each layer holds and why.
      explain = explainScript {
        inherit
          baseName
          closureRoots
          layeringArgs
          excludePaths
          layers
          ;
        conf = copyConf;
      };
    };

    # config's string context makes every store path it mentions part of
    # the image's closure.
    baseJson = writeText "${baseName}-base.json" (
      builtins.toJSON (
        {
          inherit config architecture variant;
          os = "linux";
        }
        // nonRoot.confKeys { inherit perms users; }
      )
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
      fakeRootCommands =
        nonRoot.nixDbOwners {
          inherit
            includeNixDB
            uid
            gid
            perms
            users
            ;
        }
        + fakeRootCommands;
      nativeBuildInputs = [ fakeroot ] ++ optionals enableFakechroot [ proot ];
      postBuild = ''
        mv $out old_out
        (cd old_out; eval "$extraCommands" )

        mkdir $out
        ${
          if enableFakechroot then
            ''
              proot -r $PWD/old_out ${bind-paths} --pwd=/ fakeroot bash -e -c '
                if [ -e "$NIX_ATTRS_SH_FILE" ]; then . "$NIX_ATTRS_SH_FILE"; elif [ -f .attrs.sh ]; then . .attrs.sh; fi
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
                if [ -e "$NIX_ATTRS_SH_FILE" ]; then . "$NIX_ATTRS_SH_FILE"; elif [ -f .attrs.sh ]; then . .attrs.sh; fi
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
          # Nix 2.8's sandbox names the attrs file by its path outside
          # the sandbox; it is in the build directory.
          graph=''${NIX_ATTRS_JSON_FILE:-}; [ -e "$graph" ] || graph=.attrs.json
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
            --graph "$graph" --graph-key graph \
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
  in
  runCommand "stream-${baseName}"
    {
      inherit conf streamScript;
      inherit (conf) imageName;
      preferLocalBuild = true;
      # nixpkgs' keys win over the user's passthru, as in nixpkgs; the
      # user's win over ours.
      passthru =
        copyPassthru
        // passthru
        // {
          inherit (conf) imageTag;
          inherit conf streamScript;

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
    ''
)
