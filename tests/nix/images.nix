# Test images, modelled on nixpkgs' pkgs/build-support/docker/examples.nix and
# nixos/tests/docker-tools.nix, built from real store paths.
#   pkgs       nixpkgs (stand-in) with layered-image's overlay
#   plainPkgs  the same nixpkgs without the overlay
#   li         layered-image.lib.<system> (users without the overlay)
{
  pkgs,
  plainPkgs,
  li,
}:
let
  inherit (pkgs) lib dockerTools;
  busybox = pkgs.pkgsStatic.busybox;

  greeting = pkgs.writeText "greeting" "Hello from layered-image\n";
  # A "hello" whose closure is hello -> {busybox, greeting}.
  hello = pkgs.runCommand "hello" { } ''
    mkdir -p $out/bin
    printf '#!%s\n%s %s\n' ${busybox}/bin/sh ${busybox}/bin/cat ${greeting} > $out/bin/hello
    chmod +x $out/bin/hello
  '';
  uniqueHello =
    name:
    pkgs.writeScriptBin "${name}-hello" ''
      #!${busybox}/bin/sh
      echo "${name}-hello"
    '';

  # A store path that is itself a symlink (nixpkgs #107021).
  symlink = pkgs.runCommand "symlink" { } "ln -s ${pkgs.writeTextDir "file" "test"} $out";

  parent = dockerTools.buildLayeredImage {
    name = "env-parent";
    tag = "latest";
    contents = [ busybox ];
    config.Env = [
      "FROM_PARENT=true"
      "LAST_LAYER=parent"
    ];
  };

  bulk = dockerTools.buildLayeredImage {
    name = "bulk-layer";
    tag = "latest";
    contents = [
      busybox
      hello
    ];
    maxLayers = 2;
  };

  compressed =
    compressor:
    dockerTools.buildLayeredImage {
      name = "compressed-${compressor}";
      tag = "latest";
      inherit compressor;
      contents = [ busybox ];
      config.Cmd = [
        "echo"
        "compressor ${compressor}"
      ];
    };

  # nixpkgs' own customisation layer recipe (GNU tar under fakeroot), to
  # compare layered-image's customisation-layer with, byte for byte.
  gnuTarCustomisationLayer =
    {
      contents,
      extraCommands ? "",
      fakeRootCommands ? "",
    }:
    pkgs.symlinkJoin {
      name = "gnu-tar-customisation-layer";
      paths = contents;
      inherit extraCommands fakeRootCommands;
      nativeBuildInputs = [ pkgs.fakeroot ];
      postBuild = ''
        mv $out old_out
        (cd old_out; eval "$extraCommands" )
        mkdir $out
        fakeroot bash -c '
          source $stdenv/setup
          cd old_out
          eval "$fakeRootCommands"
          tar \
            --sort name \
            --numeric-owner --mtime "@$SOURCE_DATE_EPOCH" \
            --hard-dereference \
            -cf $out/layer.tar .
        '
        sha256sum $out/layer.tar | cut -f 1 -d " " > $out/checksum
      '';
    };
  layeredArgs = {
    contents = [
      hello
      busybox
    ];
    extraCommands = ''echo "(extraCommand)" > extraCommands'';
  };
  fakeRootArgs = {
    contents = [ busybox ];
    fakeRootCommands = ''
      mkdir -p ./home/alice
      chown 1000 ./home/alice
      ln -s ${uniqueHello "fakeRoot"} ./hello
    '';
  };

  # Cross compilation: a package set whose host platform is not the build
  # machine's (the stand-in's host tools of that set fail when run here).
  crossPkgs = if pkgs.system == "aarch64-linux" then pkgs.pkgsCross.gnu64 else pkgs.pkgsCross.aarch64-multiplatform;
  crossDocker = crossPkgs.dockerTools;

  # dockerTools.override gives a fresh nixpkgs set: still layered-image's
  overriddenDocker = dockerTools.override { };

  # nixpkgs' dockerTools arguments, overridden (and chained, as nixpkgs
  # merges them): the layered functions use the given pigz and fakeroot.
  markedPigz = pkgs.writeScriptBin "pigz" ''
    #!${busybox}/bin/sh
    exec ${pkgs.buildPackages.pigz}/bin/pigz --comment overridden-pigz "$@"
  '';
  markedFakeroot = pkgs.writeScriptBin "fakeroot" ''
    #!${busybox}/bin/sh
    export LI_FAKEROOT=overridden-fakeroot
    exec ${pkgs.buildPackages.fakeroot}/bin/fakeroot "$@"
  '';
  # (the second override's function sees the first's pigz, in nixpkgs' set and ours)
  toolsDocker = (dockerTools.override { pigz = markedPigz; }).override (old: {
    fakeroot =
      assert lib.assertMsg (old.pigz.outPath == markedPigz.outPath) "override: the earlier pigz is lost";
      markedFakeroot;
  });
  storeDirDocker = dockerTools.override { storeDir = "/custom/store"; };
  hasInfix =
    infix: s:
    let
      plain = builtins.unsafeDiscardStringContext;
    in
    builtins.length (builtins.split (lib.escapeRegex (plain infix)) (plain s)) > 1;

  # 32-bit ARM: nixpkgs' defaultVariant (from GOARM) is "v7"
  armPkgs = pkgs.pkgsCross.armv7l-hf-multiplatform;

  examples = lib.filterAttrs (_: v: builtins.isAttrs v && v ? outPath) dockerTools.examples;

  # created/mtime in the forms GNU date reads, through the Nix wrapper
  dateForms = [
    "2024-01-01"
    "Jan 1 2024"
    "Mon, 01 Jan 2024 12:00:00 +0100"
    "20240101"
    "@1700000000"
    "2024-01-01T12:00:00-08"
    "2024-01-01 12:00:00 CET"
    "2024-07-01 12:00:00 PDT"
  ];

  nixShellDrv = builtins.derivation {
    name = "nix-shell-drv";
    inherit (pkgs) system;
    outputs = [ "out" ]; # stdenv.mkDerivation always sets it; streamNixShellImage reads it
    builder = "${busybox}/bin/sh";
    args = [
      "-c"
      "echo built-by-buildDerivation > $out"
    ];
    greeting = "hi";
  };

  images = rec {
    layered = dockerTools.streamLayeredImage ({
      name = "layered-image";
      tag = "latest";
      config.Cmd = [ "hello" ];
    } // layeredArgs);

    # the same image, its layer digests computed at build time
    precomputed = dockerTools.streamLayeredImage ({
      name = "layered-image";
      tag = "precomputed";
      config.Cmd = [ "hello" ];
      precomputeLayerDigests = true;
    } // layeredArgs);

    # `layered` with an SBOM: the same derivation (so the same image),
    # the SBOM built beside it in the sandbox. The direct contents' meta
    # as nixpkgs' packages carry it (pname, version, an SPDX license).
    sbomSpdx = dockerTools.streamLayeredImage ({
      name = "layered-image";
      tag = "latest";
      config.Cmd = [ "hello" ];
      sbom = "spdx";
    } // layeredArgs // {
      contents = [
        (hello // {
          pname = "hello";
          version = "2.12.1";
          meta = {
            license = [ { spdxId = "GPL-3.0-or-later"; } ];
            homepage = "https://example.org/hello";
          };
        })
        busybox
      ];
    });
    sbomCyclonedx = dockerTools.streamLayeredImage ({
      name = "layered-image";
      tag = "latest";
      config.Cmd = [ "hello" ];
      sbom = "cyclonedx";
    } // layeredArgs);

    # only through config's string context; via the flake's lib (no overlay)
    another = li.streamLayeredImage {
      name = "another-layered-image";
      tag = "latest";
      config.Cmd = [ "${hello}/bin/hello" ];
    };

    inherit bulk parent;

    layeredBulk = dockerTools.buildLayeredImage {
      name = "layered-bulk-layer";
      tag = "latest";
      fromImage = bulk;
      contents = [
        busybox
        hello
      ];
      maxLayers = 4;
    };

    envChild = dockerTools.streamLayeredImage {
      name = "env-child";
      tag = "latest";
      fromImage = parent;
      contents = [ busybox ];
      config.Env = [
        "FROM_CHILD=true"
        "LAST_LAYER=child"
      ];
      config.Cmd = [ "env" ];
    };

    noTagStream = dockerTools.streamLayeredImage {
      name = "no-tag-stream";
      contents = [ busybox ];
    };

    noTagBuild = dockerTools.buildLayeredImage {
      name = "no-tag-build";
      contents = [ busybox ];
      compressor = "none";
    };

    unstableDate = dockerTools.streamLayeredImage {
      name = "unstable-date";
      tag = "latest";
      contents = [ busybox ];
      created = "now";
    };

    fakeRoot = dockerTools.streamLayeredImage ({
      name = "fake-root-commands";
      tag = "latest";
    } // fakeRootArgs);

    # fromImage (2 layers) + customisation layer leave nothing of maxLayers = 3:
    # the build must fail with nixpkgs' message
    tooFewLayers = dockerTools.streamLayeredImage {
      name = "too-few-layers";
      fromImage = bulk;
      contents = [ busybox ];
      maxLayers = 3;
    };

    # passthru.streamScript: `streamScript CONF [-t NAME:TAG]`
    streamScript = layered.streamScript;

    gnuTarLayered = gnuTarCustomisationLayer layeredArgs;
    gnuTarFakeRoot = gnuTarCustomisationLayer fakeRootArgs;

    noStore = dockerTools.streamLayeredImage {
      name = "no-store-paths";
      tag = "latest";
      contents = [
        busybox
        hello
      ];
      includeStorePaths = false;
      config.Cmd = [ "/bin/hello" ];
    };

    storeSymlink = dockerTools.streamLayeredImage {
      name = "store-symlink";
      tag = "latest";
      contents = [
        busybox
        symlink
      ];
    };

    nonRoot = dockerTools.streamLayeredImage {
      name = "non-root";
      tag = "latest";
      contents = [ busybox ];
      uid = 1000;
      gid = 1000;
      uname = "user";
      gname = "user";
      config.User = "1000:1000";
      config.Cmd = [
        "stat"
        "-c"
        "%u:%g"
        "${busybox}/bin/busybox"
      ];
    };

    pipeline = dockerTools.streamLayeredImage {
      name = "layering-pipeline";
      tag = "latest";
      contents = [
        hello
        busybox
      ];
      layeringPipeline = [
        [
          "subcomponent_out"
          [ "${busybox}" ]
        ]
        [
          "over"
          "rest"
          [
            "pipe"
            [
              [ "popularity_contest" ]
              [
                "limit_layers"
                2
              ]
            ]
          ]
        ]
      ];
    };

    pipelineFile = dockerTools.streamLayeredImage {
      name = "layering-pipeline-file";
      tag = "latest";
      contents = [
        hello
        busybox
      ];
      layeringPipeline = pkgs.writeText "pipeline.json" (
        builtins.toJSON [
          [ "popularity_contest" ]
          [
            "limit_layers"
            1
          ]
        ]
      );
    };

    # layered-image's own: explicit layers (buildLayer), one nested in the other
    depsLayer = dockerTools.buildLayer {
      name = "deps";
      contents = [ busybox ];
    };
    appLayer = dockerTools.buildLayer {
      name = "app";
      contents = [ (uniqueHello "layer") ];
      layers = [ depsLayer ];
    };
    withLayers = dockerTools.streamLayeredImage {
      name = "with-layers";
      tag = "latest";
      contents = [ hello ];
      layers = [ appLayer ];
      config.Cmd = [ "${uniqueHello "layer"}/bin/layer-hello" ];
      precomputeLayerDigests = true;
    };

    # layered-image's own (docs/perms.md): a non-root image with perms,
    # users and the Nix DB, through buildLayeredImage: nix works as the
    # user; and a buildLayer made with perms keeps its digests in an image
    nixAsUser = dockerTools.buildLayeredImage {
      name = "nix-as-user";
      tag = "latest";
      contents = [
        busybox
        pkgs.nix
        hello
        pkgs.fakeNss
      ];
      includeNixDB = true;
      uid = 1000;
      gid = 1000;
      uname = "app";
      gname = "app";
      users = [
        {
          name = "app";
          uid = 1000;
          gid = 1000;
        }
      ];
      perms = [
        {
          path = hello;
          regex = "/bin$";
          mode = "0700";
        }
      ];
      config.User = "app";
      compressor = "none";
    };
    permsLayer = dockerTools.buildLayer {
      name = "perms";
      contents = [ (uniqueHello "perms") ];
      perms = [
        {
          path = uniqueHello "perms";
          regex = "/bin$";
          mode = "0700";
          uid = 1000;
          gid = 1000;
        }
      ];
    };
    withPermsLayer = dockerTools.streamLayeredImage {
      name = "with-perms-layer";
      tag = "latest";
      contents = [ busybox ];
      layers = [ permsLayer ];
      config.Cmd = [ "${uniqueHello "perms"}/bin/perms-hello" ];
      precomputeLayerDigests = true;
    };

    # layered-image's own: pushed by passthru.copyToRegistry (and an index
    # of two platforms by copyIndex) to the harness' registry
    pushable = dockerTools.streamLayeredImage ({
      name = "127.0.0.1:5111/li/pushable";
      tag = "v1";
      extraTags = [ "v1.0" ];
      config.Cmd = [ "hello" ];
    } // layeredArgs);
    # format = "oci": copyToRegistry pushes the layout's blobs as they are
    ociPush = dockerTools.buildLayeredImage ({
      name = "127.0.0.1:5111/li/oci-push";
      tag = "v1";
      format = "oci";
      extraTags = [ "v1.0" "stable" ];
      config.Cmd = [ "hello" ];
    } // layeredArgs);
    pushableArm = dockerTools.streamLayeredImage ({
      name = "127.0.0.1:5111/li/pushable";
      tag = "v1";
      architecture = "arm64";
      config.Cmd = [ "hello" ];
    } // layeredArgs);
    multi = dockerTools.copyIndex { images = [ pushable pushableArm ]; };

    # layered-image's own: an OCI image layout as the build's output
    ociLayout = dockerTools.buildLayeredImage ({
      name = "layered-image-oci";
      tag = "oci";
      format = "oci";
      config.Cmd = [ "hello" ];
    } // layeredArgs);
    ociZstd = dockerTools.buildLayeredImage ({
      name = "layered-image-oci-zstd";
      tag = "oci";
      format = "oci";
      compressor = "zstd";
      config.Cmd = [ "hello" ];
    } // layeredArgs);

    compressedNone = compressed "none";
    compressedGz = compressed "gz";
    compressedZstd = compressed "zstd";

    architecture = dockerTools.streamLayeredImage {
      name = "layered-image-with-architecture";
      tag = "latest";
      architecture = "arm64";
      contents = [ busybox ];
    };

    prefixed = dockerTools.streamLayeredImage {
      name = "registry-1.docker.io/layered-image";
      tag = "latest";
      contents = [ busybox ];
    };

    nixDb = dockerTools.buildLayeredImageWithNixDb {
      name = "nix-db";
      tag = "latest";
      contents = [
        busybox
        hello
      ];
      compressor = "none";
    };

    # explicit created/mtime, debug, a single (non-list) contents, a bare
    # path in contents, config keys, user passthru and meta
    dated = dockerTools.streamLayeredImage {
      name = "dated";
      tag = "latest";
      contents = busybox;
      created = "2001-02-03T04:05:06Z";
      mtime = "2002-03-04T05:06:07+00:00";
      debug = true;
      config = {
        WorkingDir = "/work";
        Labels."org.example.test" = "yes";
        ExposedPorts."8080/tcp" = { };
      };
      passthru.custom = "kept";
      meta.description = "dated test image";
    };

    withPath = dockerTools.streamLayeredImage {
      name = "layered-image-with-path";
      tag = "latest";
      contents = [
        busybox
        ./test-dummy
      ];
    };

    # enableFakechroot: commands see the image root as /, owners survive
    fakechrootChown = dockerTools.streamLayeredImage {
      name = "fakechroot-chown";
      tag = "latest";
      contents = [ busybox ];
      enableFakechroot = true;
      fakeRootCommands = ''
        mkdir -p /data /etc
        chown 12345:12345 /data
        echo "written in the fake chroot" > /etc/marker
      '';
    };

    # a buildEnv in contents (its links land in the image root)
    buildEnvContents = dockerTools.streamLayeredImage {
      name = "build-env-contents";
      tag = "latest";
      contents = [
        (pkgs.buildEnv {
          name = "image-root";
          paths = [
            hello
            busybox
          ];
        })
      ];
      config.Cmd = [ "hello" ];
    };

    # cross: every script that runs on the build machine must be the build
    # platform's
    crossStream = crossDocker.streamLayeredImage {
      name = "cross-stream";
      tag = "latest";
      contents = [ busybox ];
      config.Cmd = [ "echo" "cross" ];
    };
    crossBuild = crossDocker.buildLayeredImage {
      name = "cross-build";
      tag = "latest";
      contents = [ busybox ];
      config.Cmd = [ "echo" "cross" ];
    };
    crossOci = crossDocker.buildLayeredImage {
      name = "cross-oci";
      tag = "latest";
      format = "oci";
      contents = [ busybox ];
    };
    crossLayer = crossDocker.buildLayer {
      name = "cross-layer";
      contents = [ busybox ];
    };
    crossWithLayer = crossDocker.streamLayeredImage {
      name = "cross-with-layer";
      tag = "latest";
      layers = [ crossLayer ];
      precomputeLayerDigests = true;
      config.Cmd = [ "${busybox}/bin/echo" "cross layer" ];
    };
    crossFakechroot = crossDocker.streamLayeredImage {
      name = "cross-fakechroot";
      tag = "latest";
      contents = [ busybox ];
      enableFakechroot = true;
      fakeRootCommands = "mkdir -p /data; chown 4242 /data";
    };
    crossNixDb = crossDocker.buildLayeredImageWithNixDb {
      name = "cross-nix-db";
      tag = "latest";
      contents = [ busybox ];
      compressor = "zstd";
    };
    crossNixShell = crossDocker.streamNixShellImage {
      drv = nixShellDrv;
      name = "cross-nix-shell";
      tag = "latest";
      shell = "${busybox}/bin/sh";
      run = ''echo "cross nix-shell greeting=$greeting"'';
    };
    crossBuildNixShell = crossDocker.buildNixShellImage {
      drv = nixShellDrv;
      shell = "${busybox}/bin/sh";
      compressor = "none";
    };
    crossStreamScript = crossStream.streamScript;
    crossCopyTo = crossStream.copyTo;

    # dockerTools.override { pigz; fakeroot; }: used by the layered functions
    overriddenTools = toolsDocker.buildLayeredImage {
      name = "overridden-tools";
      tag = "latest";
      contents = [ busybox ];
      fakeRootCommands = ''echo "$LI_FAKEROOT" > ./fakeroot-marker'';
      config.Cmd = [ "cat" "/fakeroot-marker" ];
    };

    # variant: given, and nixpkgs' default on 32-bit ARM
    variant = dockerTools.streamLayeredImage {
      name = "variant";
      tag = "latest";
      architecture = "arm";
      variant = "v5";
      contents = [ busybox ];
    };
    armDefaultVariant = armPkgs.dockerTools.streamLayeredImage {
      name = "arm-default-variant";
      tag = "latest";
      contents = [ busybox ];
    };

    # tags and names nixpkgs accepts (Docker refuses them)
    oddTag = dockerTools.streamLayeredImage {
      name = "odd";
      tag = "1.0.0+build1";
      contents = [ busybox ];
    };
    oddTagOci = dockerTools.buildLayeredImage {
      name = "odd";
      tag = "feature/x";
      format = "oci";
      contents = [ busybox ];
    };

    # what the sandbox gives a build (the harness runs Nix with sandbox = true)
    sandboxProbe = pkgs.runCommand "sandbox-probe" { } ''
      # interfaces of this network namespace other than lo
      if ${busybox}/bin/grep -v -e '^ *lo:' /proc/net/dev | ${busybox}/bin/grep -q ':'; then net=network; else net=no-network; fi
      echo "$PWD $HOME $net" > $out
    '';

    # through dockerTools.override
    overridden = overriddenDocker.buildLayeredImage {
      name = "overridden";
      tag = "latest";
      contents = [ busybox ];
      config.Cmd = [ "echo" "overridden" ];
    };

    nixShell = dockerTools.streamNixShellImage {
      drv = nixShellDrv;
      tag = "latest";
      shell = "${busybox}/bin/sh";
      run = ''echo "uid=$(id -u) home=$HOME greeting=$greeting"; buildDerivation && cat "$out"'';
    };
  };
in
{
  inherit images examples;

  # Values the harness compares against (no derivations built by eval).
  testInfo = {
    busybox = "${busybox}";
    symlink = "${symlink}";
    hello = "${hello}";
    noTagStreamTag = images.noTagStream.imageTag;
    precomputedConf = "${images.precomputed.conf}";
    sbomSpdxDoc = "${images.sbomSpdx.sbom}";
    sbomCyclonedxDoc = "${images.sbomCyclonedx.sbom}";
    layeredConf = "${images.layered.conf}";
    layeredHasNoSbom = !(images.layered ? sbom);
    precomputedCopyTo = "${images.precomputed.copyTo}";
    withLayersConf = "${images.withLayers.conf}";
    withPermsLayerConf = "${images.withPermsLayer.conf}";
    pushableRegistry = "${images.pushable.copyToRegistry}";
    ociPushRegistry = "${images.ociPush.copyToRegistry}";
    ociPushCopyTo = "${images.ociPush.copyTo}";
    pushableDaemon = "${images.pushable.copyToDockerDaemon}";
    pushablePodman = "${images.pushable.copyToPodman}";
    oddTagDaemon = "${images.oddTag.copyToDockerDaemon}";
    multiCopy = "${images.multi}";
    withLayersCopyTo = "${images.withLayers.copyTo}";
    buildCopyTo = "${images.bulk.copyTo}";
    noTagBuildTag = images.noTagBuild.imageTag;
    streamIsExe = images.layered.isExe or false;
    buildHasStream = images.bulk ? stream;
    confIsPassthru = images.layered ? conf;
    userPassthru = images.dated.custom or null;
    metaDescription = images.dated.meta.description or null;
    overrideTag = (images.layered.override { tag = "overridden"; }).imageTag;
    upperCaseImageName = (dockerTools.streamLayeredImage { name = "Example/UPPER"; }).imageName;
    upperCaseStreamName = (dockerTools.streamLayeredImage { name = "Example/UPPER"; }).name;
    examples = builtins.mapAttrs (_: v: v.outPath) examples;
    exampleTags = builtins.mapAttrs (_: v: v.imageTag or null) examples;
    nginxStreamConf = "${examples.nginxStream.conf}";
    nixLayeredNix = "${pkgs.nix}";
    exampleSymlink = "${dockerTools.examples.layeredStoreSymlink.passthru.symlink}";
    overriddenExamplesNginx = overriddenDocker.examples.nginx.outPath;
    overriddenHasStreamLayeredImage = (overriddenDocker.streamLayeredImage { name = "x"; }).name;
    # dockerTools.override's arguments reach layered-image's functions
    overrideStoreDir = hasInfix "--store-dir /custom/store" (storeDirDocker.streamLayeredImage { name = "x"; }).conf.drvAttrs.buildCommand;
    overridePigz = hasInfix "${markedPigz}/bin/pigz" images.overriddenTools.drvAttrs.buildCommand;

    # passthru: the user's wins over layered-image's extras; nixpkgs' own
    # keys (imageTag, conf, streamScript, isExe) win over the user's, as in nixpkgs
    userPassthruWins =
      let
        img = dockerTools.streamLayeredImage {
          name = "p";
          tag = "t";
          passthru = {
            copyTo = "mine";
            copyToRegistry = "mine too";
            imageTag = "not mine";
          };
        };
        built = dockerTools.buildLayeredImage {
          name = "p";
          passthru.copyToPodman = "mine";
        };
      in
      [
        img.copyTo
        img.copyToRegistry
        img.imageTag
        built.copyToPodman
        (img.copyToDockerDaemon ? outPath)
      ];
    armArchitecture = armPkgs.go.GOARCH;

    # created/mtime in the forms GNU date reads, through the Nix wrapper
    inherit dateForms;
    dateConfDrvs = map (
      d:
      (dockerTools.streamLayeredImage {
        name = "dates";
        created = d;
        mtime = d;
      }).conf.drvPath
    ) dateForms;

    # passthru.imageTag of tag = null carries no string context
    noTagStreamTagContext = builtins.hasContext images.noTagStream.imageTag;
    noTagBuildTagContext = builtins.hasContext images.noTagBuild.imageTag;
    exampleNoTagContext = builtins.hasContext dockerTools.examples.bashNoTagLayered.imageTag;

    # derivation attributes, as nixpkgs sets them
    streamAttrs = {
      imageName = images.layered.drvAttrs.imageName;
      conf = "${images.layered.drvAttrs.conf}" == images.layered.conf.outPath;
      streamScript = "${images.layered.drvAttrs.streamScript}" == images.layered.streamScript.outPath;
    };
    confAttrs =
      let
        c = images.dated.conf.drvAttrs;
      in
      {
        inherit (c)
          imageName
          created
          mtime
          uid
          gid
          uname
          gname
          fromImage
          ;
        imageTag = images.dated.conf.imageTag;
      };
    confFromImage = "${images.envChild.conf.drvAttrs.fromImage}" == images.parent.outPath;
    # buildLayeredImage's stream gets neither meta nor compressor
    buildStreamMeta = images.compressedZstd.stream.meta;
    buildStreamHasCompressor = images.compressedZstd.stream.drvAttrs ? compressor;
    buildMeta =
      (dockerTools.buildLayeredImage {
        name = "meta";
        meta.description = "kept on the archive";
      }).meta.description or null;
    buildMetaStream =
      (dockerTools.buildLayeredImage {
        name = "meta";
        meta.description = "kept on the archive";
      }).stream.meta.description or null;

    # cross: the build platform's tools
    crossBuildShell = crossPkgs.buildPackages.runtimeShell;
    crossHostShell = crossPkgs.runtimeShell;
    crossBuildLayeredImage = "${crossPkgs.buildPackages.layered-image}";
    crossHostLayeredImage = "${crossPkgs.layered-image}";
    crossArchitecture = crossPkgs.go.GOARCH;
    crossStreamScript = "${images.crossStream.streamScript}";
    crossCopyTo = "${images.crossStream.copyTo}";
    crossNixShellImage = "${images.crossNixShell}";
    crossWithLayerConf = "${images.crossWithLayer.conf}";

    # enableFakechroot also evaluates on its own (the images are built above and in examples)
    fakechrootEvaluates =
      let
        img = dockerTools.streamLayeredImage {
          name = "fakechroot";
          contents = [ busybox ];
          enableFakechroot = true;
          fakeRootCommands = "mkdir -p /etc; echo hi > /etc/x";
        };
      in
      builtins.isString img.drvPath;
  };

  # Evaluating these must fail with nixpkgs' messages.
  errors = {
    maxLayers = (dockerTools.streamLayeredImage {
      name = "bad";
      maxLayers = 1;
    }).drvPath;
    compressor = (dockerTools.buildLayeredImage {
      name = "bad";
      compressor = "bzip3";
    }).drvPath;
    format = (dockerTools.buildLayeredImage {
      name = "bad";
      format = "tarball";
    }).drvPath;
  };
}
