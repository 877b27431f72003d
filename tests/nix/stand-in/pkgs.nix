# Stand-in for the nixpkgs package set: ONLY what ../../../nix touches, plus
# a few small packages the image tests use. Everything is a real
# `builtins.derivation` built by /bin/bash with the host's tools on PATH, so
# Nix computes real references, closures and exportReferencesGraph data.
# Host tools are wrapped as store paths (symlinks into /usr/bin); they are
# only ever used at build time, never shipped in an image.
{ lib, system }:
final:
let
  hostPath = "/usr/bin:/bin";

  goarch =
    {
      x86_64-linux = "amd64";
      aarch64-linux = "arm64";
    }
    .${system} or (throw "stand-in nixpkgs: unsupported system ${system}");

  # nixpkgs' stdenv, reduced to what runCommand-style builders rely on:
  # structured attrs loading, $out & co, SOURCE_DATE_EPOCH, NIX_BUILD_CORES,
  # PATH from nativeBuildInputs, errexit/pipefail.
  stdenv =
    builtins.derivation {
      name = "stand-in-stdenv";
      inherit system;
      builder = "/bin/sh";
      PATH = hostPath;
      setup = ''
        # stand-in stdenv setup
        if [ -n "''${NIX_ATTRS_SH_FILE:-}" ] && [ -e "$NIX_ATTRS_SH_FILE" ] && [ -z "''${__standInAttrsLoaded:-}" ]; then
          . "$NIX_ATTRS_SH_FILE"
          __standInAttrsLoaded=1
          for __o in "''${!outputs[@]}"; do export "$__o=''${outputs[$__o]}"; done
          export PATH
        fi
        export SOURCE_DATE_EPOCH="''${SOURCE_DATE_EPOCH:-315532800}"
        if [ "''${NIX_BUILD_CORES:-0}" -le 0 ]; then NIX_BUILD_CORES=$(nproc); fi
        export NIX_BUILD_CORES
        set -eo pipefail
      '';
      builderScript = ''
        set -e
        . "''${0%/*}/setup"
        if [ -n "''${buildCommandPath:-}" ]; then buildCommand=$(cat "$buildCommandPath"); fi
        eval "$buildCommand"
      '';
      args = [
        "-c"
        ''mkdir $out && printf '%s' "$setup" > $out/setup && printf '%s' "$builderScript" > $out/builder.sh''
      ];
    }
    // {
      hostPlatform = {
        inherit system;
        isLinux = true;
        isDarwin = false;
      };
      buildPlatform = final.stdenv.hostPlatform;
      inherit system;
      shell = "/bin/bash";
    };

  runCommandWith =
    name: env: buildCommand:
    let
      passthru = env.passthru or { };
      meta = env.meta or { };
      inputs = (env.nativeBuildInputs or [ ]) ++ (env.buildInputs or [ ]);
      drv = builtins.derivation (
        removeAttrs env [
          "passthru"
          "meta"
        ]
        // {
          inherit name system buildCommand stdenv;
          builder = "/bin/bash";
          args = [ "${stdenv}/builder.sh" ];
          PATH = lib.concatStringsSep ":" (map (p: "${p}/bin") inputs ++ [ hostPath ]);
        }
      );
    in
    drv // passthru // { inherit meta passthru; };

  writeTextFile =
    {
      name,
      text,
      executable ? false,
      destination ? "",
    }:
    runCommandWith name
      {
        inherit text;
        passAsFile = [ "text" ];
        preferLocalBuild = true;
      }
      ''
        target=$out${lib.escapeShellArg destination}
        mkdir -p "$(dirname "$target")"
        cp "$textPath" "$target"
        ${lib.optionalString executable ''chmod +x "$target"''}
      '';

  # Wraps host tools as a store path (build-time use only).
  hostTool =
    pname: bins:
    runCommandWith pname { } ''
      mkdir -p $out/bin
      for b in ${lib.concatStringsSep " " bins}; do
        p=$(command -v "$b") || { echo "stand-in nixpkgs: host tool '$b' is missing (run tests/install-deps.sh)" >&2; exit 1; }
        ln -s "$p" "$out/bin/$b"
      done
    '';

  # The host's static busybox, copied into the store with its applet links.
  busybox = runCommandWith "busybox-static" { } ''
    lddOut=$(LC_ALL=C ldd /bin/busybox 2>&1 || true)
    if ! [ -x /bin/busybox ] || [ "''${lddOut#*not a dynamic executable}" = "$lddOut" ]; then
      echo "stand-in nixpkgs: /bin/busybox must be a static busybox (apt-get install busybox-static)" >&2; exit 1
    fi
    mkdir -p $out/bin
    cp /bin/busybox $out/bin/busybox
    for a in $($out/bin/busybox --list); do
      [ "$a" = busybox ] || ln -s busybox "$out/bin/$a"
    done
  '';

  layeredImageBinary = ./bin/layered-image;

  fakeNssFn = lib.makeOverridable (
    {
      extraPasswdLines ? [ ],
      extraGroupLines ? [ ],
    }:
    final.symlinkJoin {
      name = "fake-nss";
      paths = [
        (final.writeTextDir "etc/passwd" ''
          root:x:0:0:root user:/var/empty:/bin/sh
          ${lib.concatStrings (map (l: l + "\n") extraPasswdLines)}nobody:x:65534:65534:nobody:/var/empty:/bin/sh
        '')
        (final.writeTextDir "etc/group" ''
          root:x:0:
          ${lib.concatStrings (map (l: l + "\n") extraGroupLines)}nobody:x:65534:
        '')
        (final.writeTextDir "etc/nsswitch.conf" ''
          hosts: files dns
        '')
        (runCommandWith "var-empty" { } "mkdir -p $out/var/empty")
      ];
    }
  );
in
{
  inherit lib stdenv system;
  path = ./.;
  buildPackages = final;
  pkgsStatic = {
    inherit busybox;
  };
  inherit busybox;

  callPackage =
    fn: args:
    let
      f = if builtins.isFunction fn then fn else import fn;
      auto = builtins.intersectAttrs (builtins.functionArgs f) final;
    in
    lib.makeOverridable f (auto // args);

  runCommand = runCommandWith;
  runCommandLocal = name: env: runCommandWith name (env // { preferLocalBuild = true; });
  inherit writeTextFile;
  writeText = name: text: writeTextFile { inherit name text; };
  writeTextDir =
    path: text:
    writeTextFile {
      inherit text;
      name = builtins.baseNameOf path;
      destination = "/${path}";
    };
  writeScript =
    name: text:
    writeTextFile {
      inherit name text;
      executable = true;
    };
  writeScriptBin =
    name: text:
    writeTextFile {
      inherit name text;
      executable = true;
      destination = "/bin/${name}";
    };
  writeShellScriptBin =
    name: text:
    writeTextFile {
      inherit name;
      executable = true;
      destination = "/bin/${name}";
      text = "#!${final.runtimeShell}\n${text}";
    };

  # As nixpkgs: lndir every path into $out, then postBuild; other arguments
  # become environment variables.
  symlinkJoin =
    args@{
      name,
      paths,
      postBuild ? "",
      ...
    }:
    runCommandWith name
      (
        removeAttrs args [
          "name"
          "postBuild"
        ]
        // {
          passAsFile = [ "paths" ];
          preferLocalBuild = true;
          allowSubstitutes = false;
        }
      )
      ''
        lndir() {
          local src=$1 dst=$2 e b
          for e in "$src"/* "$src"/.[!.]* "$src"/..?*; do
            [ -e "$e" ] || [ -L "$e" ] || continue
            b=''${e##*/}
            if [ -L "$e" ]; then ln -sfn "$(readlink "$e")" "$dst/$b"
            elif [ -d "$e" ]; then mkdir -p "$dst/$b"; lndir "$e" "$dst/$b"
            else ln -sf "$e" "$dst/$b"; fi
          done
        }
        mkdir -p $out
        for i in $(cat $pathsPath); do
          lndir "$i" "$out"
        done
        ${postBuild}
      '';

  runtimeShell = "/bin/sh";
  go.GOARCH = goarch;

  fakeroot = hostTool "fakeroot" [ "fakeroot" ];
  proot = hostTool "proot" [ "proot" ];
  pigz = hostTool "pigz" [ "pigz" ];
  zstd = hostTool "zstd" [ "zstd" ];
  jq = hostTool "jq" [ "jq" ];
  # `sqlite3 DB SQL` (all mkDbExtraCommand needs) via python3's sqlite3
  # module, so the sqlite3 CLI need not be installed.
  sqlite = writeTextFile {
    name = "sqlite-python";
    executable = true;
    destination = "/bin/sqlite3";
    text = ''
      #!/usr/bin/env python3
      import sqlite3, sys
      if len(sys.argv) != 3:
          sys.exit("stand-in sqlite3: usage: sqlite3 DB SQL")
      con = sqlite3.connect(sys.argv[1])
      for row in con.execute(sys.argv[2]):
          print("|".join("" if v is None else str(v) for v in row))
      con.commit()
    '';
  };
  nix = hostTool "nix" [
    "nix-store"
    "nix"
  ];
  bashInteractive = runCommandWith "bash-interactive-busybox" { } ''
    mkdir -p $out/bin
    ln -s ${busybox}/bin/busybox $out/bin/bash
  '';
  cacert = runCommandWith "stand-in-cacert" { } ''
    mkdir -p $out/etc/ssl/certs
    echo "# stand-in CA bundle (empty)" > $out/etc/ssl/certs/ca-bundle.crt
  '';

  # As nixpkgs: the registration file for `nix-store --load-db`.
  closureInfo =
    { rootPaths }:
    runCommandWith "closure-info"
      {
        __structuredAttrs = true;
        exportReferencesGraph.closure = rootPaths;
        preferLocalBuild = true;
        nativeBuildInputs = [ final.jq ];
      }
      ''
        mkdir $out
        jq -r ".closure | map(.narSize) | add" < "$NIX_ATTRS_JSON_FILE" > $out/total-nar-size
        jq -r '.closure | map([.path, .narHash, .narSize, "", (.references | length)] + .references) | add | map("\(.)\n") | add' < "$NIX_ATTRS_JSON_FILE" | head -n -1 > $out/registration
        jq -r '.closure[].path' < "$NIX_ATTRS_JSON_FILE" > $out/store-paths
      '';

  # The harness copies cargo's target/release/layered-image to ./bin/ of a
  # temporary copy of this stand-in; "building" the package installs it.
  rustPlatform.buildRustPackage =
    args@{
      pname,
      version,
      src,
      cargoLock,
      ...
    }:
    assert lib.assertMsg (builtins.pathExists cargoLock.lockFile) "stand-in buildRustPackage: cargoLock.lockFile does not exist";
    assert lib.assertMsg (builtins.pathExists layeredImageBinary)
      "stand-in buildRustPackage: tests/nix/run.sh must copy target/release/layered-image to <stand-in>/bin/layered-image";
    assert lib.assertMsg (builtins.pathExists "${src}/Cargo.toml") "stand-in buildRustPackage: src has no Cargo.toml";
    runCommandWith "${pname}-${version}"
      {
        inherit src;
        cargoLock = "${cargoLock.lockFile}";
        binary = builtins.path {
          path = layeredImageBinary;
          name = "layered-image-cargo-release";
        };
        passthru = args.passthru or { };
        meta = args.meta or { };
      }
      ''
        mkdir -p $out/bin
        cp "$binary" $out/bin/${pname}
        chmod 555 $out/bin/${pname}
      '';

  dockerTools = {
    binSh = runCommandWith "bin-sh" { } ''
      mkdir -p $out/bin
      ln -s ${final.bashInteractive}/bin/bash $out/bin/sh
    '';
    usrBinEnv = runCommandWith "usr-bin-env" { } ''
      mkdir -p $out/usr/bin
      ln -s ${busybox}/bin/env $out/usr/bin/env
    '';
    fakeNss = fakeNssFn { };
    # nixpkgs' own Python implementation is deliberately absent: the
    # overlay under test must replace it.
    streamLayeredImage = _: throw "stand-in nixpkgs: dockerTools.streamLayeredImage (Python) is not provided; the layered-image overlay should have replaced it";
    buildLayeredImage = _: throw "stand-in nixpkgs: dockerTools.buildLayeredImage (Python) is not provided; the layered-image overlay should have replaced it";
    buildLayeredImageWithNixDb = _: throw "stand-in nixpkgs: dockerTools.buildLayeredImageWithNixDb is not provided";
    streamNixShellImage = _: throw "stand-in nixpkgs: dockerTools.streamNixShellImage is not provided";
    buildNixShellImage = _: throw "stand-in nixpkgs: dockerTools.buildNixShellImage is not provided";
  };
}
