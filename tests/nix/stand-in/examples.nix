# Stand-in for nixpkgs' pkgs/build-support/docker/examples.nix: the images
# it builds with the layered functions, with the same names and arguments,
# over the stand-in's packages (busybox for coreutils, a busybox httpd for
# nginx, a one-line etc activation for NixOS' etc module). As in nixpkgs,
# `buildLayeredImage` and `streamNixShellImage` are this file's arguments
# (dockerTools' own functions); the rest goes through `pkgs.dockerTools`.
# Examples of buildImage, pullImage and mergeImages are not modelled.
{
  pkgs,
  buildImage,
  buildLayeredImage,
  fakeNss,
  pullImage,
  shadowSetup,
  buildImageWithNixDb,
  pkgsCross,
  streamNixShellImage,
}:
let
  nginxArguments =
    let
      port = "80";
      webRoot = pkgs.writeTextDir "index.html" "<html><body><h1>Hello from NGINX</h1></body></html>\n";
      conf = pkgs.writeText "nginx.conf" ''
        user nobody nobody;
        daemon off;
        http {
          server {
            listen ${port};
            location / {
              root ${webRoot};
            }
          }
        }
      '';
    in
    {
      name = "nginx-container";
      tag = "latest";
      contents = [
        fakeNss
        pkgs.nginx
      ];
      extraCommands = ''
        mkdir -p tmp/nginx_client_body
        mkdir -p var/log/nginx
      '';
      config = {
        Cmd = [
          "nginx"
          "-c"
          conf
        ];
        ExposedPorts."${port}/tcp" = { };
      };
    };

  # NixOS' etc module, reduced: /etc/static is a store path, /etc/NAME a
  # link into it, made by absolute paths (so inside the fake chroot).
  etcStatic = pkgs.writeTextDir "some-config-file" ''
    127.0.0.1 localhost
    ::1 localhost
  '';
  etcActivationCommands = ''
    ln -s ${etcStatic} /etc/static
    ln -s /etc/static/some-config-file /etc/some-config-file
  '';

  userFiles =
    { user, uid }:
    [
      (pkgs.writeTextDir "etc/shadow" "root:!x:::::::\n${user}:!:::::::\n")
      (pkgs.writeTextDir "etc/passwd" "root:x:0:0::/root:${pkgs.runtimeShell}\n${user}:x:${toString uid}:${toString uid}::/home/${user}:\n")
      (pkgs.writeTextDir "etc/group" "root:x:0:\n${user}:x:${toString uid}:\n")
      (pkgs.writeTextDir "etc/gshadow" "root:x::\n${user}:x::\n")
    ];

  helloRoot = pkgs.buildEnv {
    name = "hello-root";
    paths = [ pkgs.hello ];
  };
in
rec {
  nginx = buildLayeredImage nginxArguments;
  nginxStream = pkgs.dockerTools.streamLayeredImage nginxArguments;

  layered-image = pkgs.dockerTools.buildLayeredImage {
    name = "layered-image";
    tag = "latest";
    extraCommands = ''echo "(extraCommand)" > extraCommands'';
    config.Cmd = [ "${pkgs.hello}/bin/hello" ];
    contents = [
      pkgs.hello
      pkgs.bash
      pkgs.coreutils
    ];
  };

  layered-on-top-layered = pkgs.dockerTools.buildLayeredImage {
    name = "layered-on-top-layered";
    tag = "latest";
    fromImage = layered-image;
    extraCommands = ''
      mkdir ./example-output
      chmod 777 ./example-output
    '';
    config = {
      Env = [ "PATH=${pkgs.coreutils}/bin/" ];
      WorkingDir = "/example-output";
      Cmd = [
        "${pkgs.bash}/bin/bash"
        "-c"
        "echo hello > foo; cat foo"
      ];
    };
  };

  another-layered-image = pkgs.dockerTools.buildLayeredImage {
    name = "another-layered-image";
    tag = "latest";
    config.Cmd = [ "${pkgs.hello}/bin/hello" ];
  };

  two-layered-image = pkgs.dockerTools.buildLayeredImage {
    name = "two-layered-image";
    tag = "latest";
    config.Cmd = [ "${pkgs.hello}/bin/hello" ];
    contents = [
      pkgs.bash
      pkgs.hello
    ];
    maxLayers = 2;
  };

  bulk-layer = pkgs.dockerTools.buildLayeredImage {
    name = "bulk-layer";
    tag = "latest";
    contents = [
      pkgs.coreutils
      pkgs.hello
    ];
    maxLayers = 2;
  };

  layered-bulk-layer = pkgs.dockerTools.buildLayeredImage {
    name = "layered-bulk-layer";
    tag = "latest";
    fromImage = two-layered-image;
    contents = [
      pkgs.coreutils
      pkgs.hello
    ];
    maxLayers = 4;
  };

  # No store layers: busybox copied into the root; hello only runs at build time.
  no-store-paths = pkgs.dockerTools.buildLayeredImage {
    name = "no-store-paths";
    tag = "latest";
    extraCommands = ''
      cp -r ${pkgs.pkgsStatic.busybox}/* .
      ${pkgs.hello}/bin/hello
    '';
  };

  nixLayered = pkgs.dockerTools.buildLayeredImageWithNixDb {
    name = "nix-layered";
    tag = "latest";
    contents = [
      pkgs.coreutils
      pkgs.nix
      pkgs.bash
    ];
    config.Env = [
      "NIX_PAGER=cat"
      "USER=nobody"
    ];
  };

  filesInStore = pkgs.dockerTools.buildLayeredImageWithNixDb {
    name = "file-in-store";
    tag = "latest";
    contents = [
      pkgs.coreutils
      pkgs.nix
      (pkgs.writeScriptBin "myscript" ''
        #!${pkgs.runtimeShell}
        cat ${pkgs.writeText "somefile" "some data"}
      '')
    ];
    config = {
      Cmd = [ "myscript" ];
      Env = [ "USER=root" ];
    };
  };

  unstableDateLayered = pkgs.dockerTools.buildLayeredImage {
    name = "unstable-date-layered";
    tag = "latest";
    contents = [ pkgs.coreutils ];
    created = "now";
  };

  bashNoTagLayered = pkgs.dockerTools.buildLayeredImage {
    name = "bash-no-tag-layered";
    contents = pkgs.bashInteractive;
  };

  bashLayeredUncompressed = pkgs.dockerTools.buildLayeredImage {
    name = "bash-layered-uncompressed";
    tag = "latest";
    compressor = "none";
    contents = pkgs.bashInteractive;
  };

  bashLayeredZstdCompressed = pkgs.dockerTools.buildLayeredImage {
    name = "bash-layered-zstd";
    tag = "latest";
    compressor = "zstd";
    contents = pkgs.bashInteractive;
  };

  bashNoTagStreamLayered = pkgs.dockerTools.streamLayeredImage {
    name = "bash-no-tag-stream-layered";
    contents = pkgs.bashInteractive;
  };

  bashLayeredWithUser = pkgs.dockerTools.buildLayeredImage {
    name = "bash-layered-with-user";
    tag = "latest";
    contents = [
      pkgs.bash
      pkgs.coreutils
    ]
    ++ userFiles {
      user = "somebody";
      uid = 999;
    };
  };

  layeredStoreSymlink =
    let
      target = pkgs.writeTextDir "dir/target" "Content doesn't matter.";
      symlink = pkgs.runCommand "symlink" { } "ln -s ${target} $out";
    in
    pkgs.dockerTools.buildLayeredImage {
      name = "layeredstoresymlink";
      tag = "latest";
      contents = [
        pkgs.bash
        symlink
      ];
    }
    // {
      passthru = { inherit symlink; };
    };

  prefixedLayeredImage = pkgs.dockerTools.buildLayeredImage {
    name = "registry-1.docker.io/layered-image";
    tag = "latest";
    config.Cmd = [ "${pkgs.hello}/bin/hello" ];
  };

  layeredImageWithFakeRootCommands = pkgs.dockerTools.buildLayeredImage {
    name = "layered-image-with-fake-root-commands";
    tag = "latest";
    contents = [ pkgs.pkgsStatic.busybox ];
    fakeRootCommands = ''
      mkdir -p ./home/alice
      chown 1000 ./home/alice
    '';
  };

  helloOnRoot = pkgs.dockerTools.streamLayeredImage {
    name = "hello";
    tag = "latest";
    contents = [ helloRoot ];
    config.Cmd = [ "hello" ];
  };

  helloOnRootNoStore = pkgs.dockerTools.streamLayeredImage {
    name = "hello";
    tag = "latest";
    contents = [ helloRoot ];
    config.Cmd = [ "hello" ];
    includeStorePaths = false;
  };

  helloOnRootNoStoreFakechroot = pkgs.dockerTools.streamLayeredImage {
    name = "hello";
    tag = "latest";
    contents = [ helloRoot ];
    config.Cmd = [ "hello" ];
    includeStorePaths = false;
    enableFakechroot = true;
  };

  etc = pkgs.dockerTools.streamLayeredImage {
    name = "etc";
    tag = "latest";
    enableFakechroot = true;
    fakeRootCommands = ''
      mkdir -p /etc
      ${etcActivationCommands}
    '';
    config.Cmd = pkgs.writeScript "etc-cmd" ''
      #!${pkgs.busybox}/bin/sh
      ${pkgs.busybox}/bin/cat /etc/some-config-file
    '';
  };

  imageViaFakeChroot = pkgs.dockerTools.streamLayeredImage {
    name = "image-via-fake-chroot";
    tag = "latest";
    config.Cmd = [ "hello" ];
    enableFakechroot = true;
    # /bin, not ./bin: the fake chroot makes absolute paths the image's
    fakeRootCommands = ''
      mkdir /bin
      ln -s ${pkgs.hello}/bin/hello /bin/hello
    '';
  };

  layered-image-with-path = pkgs.dockerTools.streamLayeredImage {
    name = "layered-image-with-path";
    tag = "latest";
    contents = [
      pkgs.bashInteractive
      ./test-dummy
    ];
  };

  layered-image-with-architecture = pkgs.dockerTools.streamLayeredImage {
    name = "layered-image-with-architecture";
    tag = "latest";
    architecture = "arm64";
    contents = [
      pkgs.bashInteractive
      ./test-dummy
    ];
  };

  nix-shell-basic = streamNixShellImage {
    name = "nix-shell-basic";
    tag = "latest";
    drv = pkgs.hello;
  };

  nix-shell-hook = streamNixShellImage {
    name = "nix-shell-hook";
    tag = "latest";
    drv = pkgs.mkShell {
      shellHook = ''
        echo "This is the shell hook!"
        exit
      '';
    };
  };

  nix-shell-inputs = streamNixShellImage {
    name = "nix-shell-inputs";
    tag = "latest";
    drv = pkgs.mkShell { nativeBuildInputs = [ pkgs.hello ]; };
    command = ''
      hello
    '';
  };

  nix-shell-pass-as-file = streamNixShellImage {
    name = "nix-shell-pass-as-file";
    tag = "latest";
    drv = pkgs.mkShell {
      str = "this is a string";
      passAsFile = [ "str" ];
    };
    command = ''
      cat "$strPath"
    '';
  };

  nix-shell-run = streamNixShellImage {
    name = "nix-shell-run";
    tag = "latest";
    drv = pkgs.mkShell { };
    run = ''
      case "$-" in
      *i*) echo This shell is interactive ;;
      *) echo This shell is not interactive ;;
      esac
    '';
  };

  nix-shell-command = streamNixShellImage {
    name = "nix-shell-command";
    tag = "latest";
    drv = pkgs.mkShell { };
    command = ''
      case "$-" in
      *i*) echo This shell is interactive ;;
      *) echo This shell is not interactive ;;
      esac
    '';
  };

  nix-shell-writable-home = streamNixShellImage {
    name = "nix-shell-writable-home";
    tag = "latest";
    drv = pkgs.mkShell { };
    run = ''
      if ! touch $HOME/test-file; then
        echo "home directory is not writable"
        exit 1
      fi
      echo "home directory is writable"
    '';
  };

  nix-layered = pkgs.dockerTools.streamLayeredImage {
    name = "nix-layered";
    tag = "latest";
    contents = [
      pkgs.nix
      pkgs.bash
    ];
    includeNixDB = true;
    config.Env = [ "NIX_PAGER=cat" ];
  };
}
