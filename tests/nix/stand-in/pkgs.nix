# Stand-in for the nixpkgs package set: ONLY what ../../../nix touches, plus
# a few small packages the image tests use. Everything is a real
# `builtins.derivation` built by /bin/bash with the host's tools on PATH, so
# Nix computes real references, closures and exportReferencesGraph data.
# Host tools are wrapped as store paths (symlinks into /usr/bin) where they
# only run at build time; where they must run with nothing but the store
# (inside proot's chroot for enableFakechroot, inside containers), Debian's
# binaries are copied into the store with the shared libraries `ldd` lists
# and the dynamic loader, behind a wrapper that runs the loader.
#
# Cross compilation, as nixpkgs models it: `crossSystem` makes a package set
# whose host platform differs from the build platform; `buildPackages` is
# the native set. The cross set's own runtimeShell, layered-image, fakeroot,
# proot, pigz, zstd, jq, nix and sqlite are "foreign": like binaries of
# another architecture they cannot run on the build machine (they do run in
# a container, as qemu-user would let them), so a script that picks the
# host platform's tool instead of buildPackages' fails the build.
{
  lib,
  system,
  crossSystem ? null,
  buildPackages ? null,
  overlays ? [ ],
}:
final:
let
  hostPath = "/usr/bin:/bin";
  hostSystem = if crossSystem == null then system else crossSystem.system or crossSystem;
  isCross = hostSystem != system;
  buildPkgs = if buildPackages == null then final else buildPackages;

  goarch =
    {
      x86_64-linux = "amd64";
      aarch64-linux = "arm64";
      armv7l-linux = "arm";
      x86_64-darwin = "amd64";
      aarch64-darwin = "arm64";
    }
    .${hostSystem} or (throw "stand-in nixpkgs: unsupported system ${hostSystem}");
  # As nixpkgs' go: the ARM version on 32-bit ARM, "" elsewhere.
  goarm = if hostSystem == "armv7l-linux" then "7" else "";
  isDarwin = s: builtins.match ".*-darwin" s != null;

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
        if [ -z "''${PATH:-}" ] && [ -n "''${standInPath:-}" ]; then export PATH=$standInPath; fi
        # as nixpkgs' builders: Nix 2.8's sandbox names the attrs files by
        # their path outside the sandbox; they are in the build directory
        if [ -z "''${__standInAttrsLoaded:-}" ] && { [ -e "''${NIX_ATTRS_SH_FILE:-}" ] || [ -f .attrs.sh ]; }; then
          if [ -e "''${NIX_ATTRS_SH_FILE:-}" ]; then . "$NIX_ATTRS_SH_FILE"; else . ./.attrs.sh; fi
          __standInAttrsLoaded=1
          for __o in "''${!outputs[@]}"; do export "$__o=''${outputs[$__o]}"; done
          export PATH
        fi
        export SOURCE_DATE_EPOCH="''${SOURCE_DATE_EPOCH:-315532800}"
        if [ "''${NIX_BUILD_CORES:-0}" -le 0 ]; then NIX_BUILD_CORES=$(nproc); fi
        export NIX_BUILD_CORES
        # as nixpkgs' setup: run a hook variable or function
        runHook() { local h=$1; if [ "$(type -t "$h")" = function ]; then "$h"; elif [ -n "''${!h:-}" ]; then eval "''${!h}"; fi; }
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
        system = hostSystem;
        isLinux = !isDarwin hostSystem;
        isDarwin = isDarwin hostSystem;
      };
      buildPlatform = {
        inherit system;
        isLinux = !isDarwin system;
        isDarwin = isDarwin system;
      };
      inherit system;
      shell = "/bin/bash";
    };

  # Builders run on the build machine. Like nixpkgs' stdenv, every build
  # has a store-resident bash and core utilities on PATH (after the host's),
  # so that commands still resolve inside proot's chroot, where only the
  # store is bound.
  # GNU coreutils come first, as in nixpkgs' stdenv: under fakeroot their
  # chown and stat must go through its preloaded library (a static busybox
  # applet would bypass it).
  stdenvPath = {
    first = "${buildPkgs.coreutils}/bin";
    last = "${buildPkgs.bash}/bin:${buildPkgs.busybox}/bin";
  };
  runCommandWith = mkCommand stdenvPath;
  mkCommand =
    extraPath: name: env: buildCommand:
    let
      passthru = env.passthru or { };
      meta = env.meta or { };
      inputs = (env.nativeBuildInputs or [ ]) ++ (env.buildInputs or [ ]);
      path = lib.concatStringsSep ":" (
        map (p: "${p}/bin") inputs
        ++ lib.optional (extraPath != "") extraPath.first
        ++ [ hostPath ]
        ++ lib.optional (extraPath != "") extraPath.last
      );
      drv = builtins.derivation (
        removeAttrs env [
          "passthru"
          "meta"
        ]
        // {
          inherit name system buildCommand stdenv;
          # stdenv.mkDerivation always sets it (streamNixShellImage reads it)
          outputs = env.outputs or [ "out" ];
          builder = "/bin/bash";
          args = [ "${stdenv}/builder.sh" ];
          PATH = path;
          # what setup restores when PATH is unset (as nix-shell's rcfile does);
          # nixpkgs' setup builds PATH from the inputs and stdenv's tools
          standInPath = path;
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
  busybox = mkCommand "" "busybox-static" { } ''
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

  # Shell function: `resident SRC NAME` copies the executable SRC to
  # $out/libexec/NAME with the libraries ldd lists and the loader into
  # $out/lib, and writes $out/bin/NAME, which runs it through that loader.
  residentFn = ''
    resident() {
      local src=$1 name=$2 line lib
      mkdir -p $out/bin $out/libexec $out/lib
      cp "$src" "$out/libexec/$name"
      chmod 555 "$out/libexec/$name"
      LC_ALL=C ldd "$src" > ldd.out 2>&1 || { echo "stand-in nixpkgs: ldd $src failed: $(cat ldd.out)" >&2; exit 1; }
      while read -r line; do
        case $line in
          *"=> /"*) lib=''${line#*=> }; lib=''${lib%% (*}; [ -e "$out/lib/''${lib##*/}" ] || cp -L "$lib" "$out/lib/" ;;
          /*) lib=''${line%% (*}; [ -e "$out/lib/ld.so" ] || cp -L "$lib" "$out/lib/ld.so" ;;
        esac
      done < ldd.out
      [ -e "$out/lib/ld.so" ] || { echo "stand-in nixpkgs: no dynamic loader for $src" >&2; exit 1; }
      printf '#!%s\nexec %s --argv0 "$0" --library-path %s %s "$@"\n' \
        ${busybox}/bin/sh "$out/lib/ld.so" "$out/lib" "$out/libexec/$name" > "$out/bin/$name"
      chmod 555 "$out/bin/$name"
    }
    hostBin() {
      type -P "$1" || { echo "stand-in nixpkgs: host tool '$1' is missing (run tests/install-deps.sh)" >&2; exit 1; }
    }
  '';

  # Debian binaries, runnable where only the store is.
  storeResident =
    name: bins:
    mkCommand "" name { } ''
      ${residentFn}
      for b in ${lib.concatStringsSep " " bins}; do
        resident "$(readlink -f "$(hostBin "$b")")" "$b"
      done
    '';

  # What a binary built for another platform is to the build machine: it
  # fails in a Nix build ($NIX_BUILD_TOP) and wherever the harness runs it
  # ($LI_STAND_IN_BUILD_MACHINE), and runs in a container (as with
  # qemu-user), where neither is set.
  foreign =
    drv:
    if !isCross then
      drv
    else
      mkCommand "" "${drv.name}-${hostSystem}" { } ''
        mkdir -p $out/bin
        for b in ${drv}/bin/*; do
          n=''${b##*/}
          printf '#!%s\nif [ -z "$NIX_BUILD_TOP$LI_STAND_IN_BUILD_MACHINE" ]; then exec %s "$@"; fi\necho "%s: cannot execute binary file: Exec format error (a %s binary on the %s build machine)" >&2\nexit 126\n' \
            ${buildPkgs.busybox}/bin/sh "$b" "$out/bin/$n" ${hostSystem} ${system} > $out/bin/$n
          chmod 555 $out/bin/$n
        done
      '' // { passthru = drv.passthru or { }; meta = drv.meta or { }; };

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
  buildPackages = buildPkgs;
  pkgsBuildBuild = buildPkgs;
  # As nixpkgs: package sets for other host platforms, with the same overlays.
  pkgsCross = {
    aarch64-multiplatform = import ./default.nix {
      inherit system overlays;
      crossSystem.system = "aarch64-linux";
    };
    gnu64 = import ./default.nix {
      inherit system overlays;
      crossSystem.system = "x86_64-linux";
    };
    armv7l-hf-multiplatform = import ./default.nix {
      inherit system overlays;
      crossSystem.system = "armv7l-linux";
    };
  };
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

  # As nixpkgs: "${bash}/bin/bash" of the host platform.
  runtimeShell = "${final.bash}/bin/bash";
  bash = foreign (storeResident "bash" [ "bash" ]);
  # Debian's GNU coreutils, store-resident
  coreutils = foreign (
    storeResident "coreutils" [
      "basename" "cat" "chgrp" "chmod" "chown" "cp" "cut" "date" "dirname" "echo" "env" "false" "head"
      "id" "install" "ln" "ls" "mkdir" "mktemp" "mv" "nproc" "printf" "readlink" "rm" "rmdir" "sha256sum"
      "sleep" "sort" "stat" "tail" "tee" "test" "touch" "tr" "true" "uniq" "wc" "whoami"
    ]
  );
  hello = final.writeScriptBin "hello" ''
    #!${busybox}/bin/sh
    echo "Hello, world!"
  '';
  # nginx, as far as examples.nix needs it: serves nginx.conf's `root` on
  # its `listen` port (busybox httpd).
  nginx = final.writeScriptBin "nginx" ''
    #!${busybox}/bin/sh
    conf=
    while [ $# -gt 0 ]; do case $1 in -c) conf=$2; shift ;; esac; shift; done
    port=$(${busybox}/bin/sed -n 's/^ *listen \([0-9]*\);/\1/p' "$conf")
    root=$(${busybox}/bin/sed -n 's/^ *root \(.*\);/\1/p' "$conf")
    exec ${busybox}/bin/httpd -f -p "$port" -h "$root"
  '';
  # As nixpkgs: one tree of symlinks to the paths' contents.
  buildEnv =
    {
      name,
      paths,
      pathsToLink ? [ "/" ],
      ...
    }:
    final.symlinkJoin { inherit name paths; };
  go = {
    GOARCH = goarch;
    GOARM = goarm;
  };

  # Debian's fakeroot script with its daemon and preload library in the
  # store (the library preloaded by absolute path: the loader of the
  # store-resident tools ignores LD_LIBRARY_PATH). In Nix's sandbox (a user
  # namespace mapping one uid) a real chown to another id fails with
  # EINVAL, which Debian's libfakeroot passes on; nixpkgs' fakeroot is
  # patched to ignore it. FAKEROOTDONTTRYCHOWN gives the same result: the
  # fake owner is recorded, the real chown not tried.
  fakeroot = foreign (
    mkCommand "" "fakeroot" { } ''
      ${residentFn}
      script=$(readlink -f "$(hostBin fakeroot)")
      resident "$(readlink -f "$(hostBin faked-sysv)")" faked-sysv
      libdir=$(sed -n 's/^PATHS=\([^:]*\):.*/\1/p' "$script")
      mkdir -p $out/lib/libfakeroot
      cp -L "$libdir/libfakeroot-sysv.so" $out/lib/libfakeroot/
      sed -e "1s|.*|#!${busybox}/bin/sh\nexport FAKEROOTDONTTRYCHOWN=1|" -e "s|^FAKEROOT_BINDIR=.*|FAKEROOT_BINDIR=$out/bin|" \
        -e "s|^PATHS=.*|PATHS=$out/lib/libfakeroot|" -e "s|^USEABSLIBPATH=.*|USEABSLIBPATH=1|" "$script" > $out/bin/fakeroot
      chmod 555 $out/bin/fakeroot
      grep -q "^FAKED=" $out/bin/fakeroot
    ''
  );
  proot = foreign (storeResident "proot" [ "proot" ]);
  pigz = foreign (hostTool "pigz" [ "pigz" ]);
  zstd = foreign (hostTool "zstd" [ "zstd" ]);
  jq = foreign (hostTool "jq" [ "jq" ]);
  # `sqlite3 DB SQL` (all mkDbExtraCommand needs) via python3's sqlite3
  # module, so the sqlite3 CLI need not be installed.
  sqlite = foreign (writeTextFile {
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
  });
  # Debian's nix in the store: what nix-layered images run inside.
  nix = foreign (
    mkCommand "" "nix" { } ''
      ${residentFn}
      real=$(readlink -f "$(hostBin nix-store)")
      resident "$real" nix
      # one multi-call binary: the wrapper passes on the name it was run by
      for b in nix-store nix-build nix-instantiate nix-env; do ln -s nix $out/bin/$b; done
    ''
  );
  bashInteractive = final.bash;
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
        nativeBuildInputs = [ buildPkgs.jq ];
      }
      ''
        mkdir $out
        attrs=''${NIX_ATTRS_JSON_FILE:-}; [ -e "$attrs" ] || attrs=.attrs.json
        jq -r ".closure | map(.narSize) | add" < "$attrs" > $out/total-nar-size
        jq -r '.closure | map([.path, .narHash, .narSize, "", (.references | length)] + .references) | add | map("\(.)\n") | add' < "$attrs" | head -n -1 > $out/registration
        jq -r '.closure[].path' < "$attrs" > $out/store-paths
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
    foreign (mkCommand "" "${pname}-${version}"
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
        ${residentFn}
        resident "$binary" ${pname}
      '');

  pkgs = final;
  fakeNss = fakeNssFn { };
  # As nixpkgs' mkShell: a derivation that is only ever entered.
  mkShell =
    attrs:
    runCommandWith "nix-shell" (
      removeAttrs attrs [ "shellHook" ] // { shellHook = attrs.shellHook or ""; }
    ) "echo 'mkShell: not buildable' > $out";

  # As nixpkgs: callPackage'd (so it has .override), its functions refer to
  # each other and its examples use them directly, not through pkgs.
  dockerTools = final.callPackage ./docker-tools.nix { };
}
