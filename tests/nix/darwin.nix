# A Darwin build machine making Linux images (nixpkgs' cross model: the
# build platform is Darwin, the host platform Linux). Nothing here can
# run on this Linux machine; the harness instantiates the derivations
# (evaluates their .drvPath) and checks what runs where.
{
  nixpkgs,
  layered-image,
  buildSystem,
}:
let
  hostSystem = builtins.replaceStrings [ "-darwin" ] [ "-linux" ] buildSystem;
  pkgs = import nixpkgs {
    system = buildSystem;
    crossSystem.system = hostSystem;
    overlays = [ layered-image.overlays.default ];
  };
  busybox = pkgs.buildPackages.busybox;
  image = pkgs.dockerTools.streamLayeredImage {
    name = "darwin-built";
    tag = "latest";
    contents = [ busybox ];
    config.Cmd = [ "true" ];
  };
  archive = pkgs.dockerTools.buildLayeredImage {
    name = "darwin-built";
    tag = "latest";
    contents = [ busybox ];
  };
  layer = pkgs.dockerTools.buildLayer { contents = [ busybox ]; };
  withLayer = pkgs.dockerTools.streamLayeredImage {
    name = "darwin-layers";
    layers = [ layer ];
  };
  nixShell = pkgs.dockerTools.streamNixShellImage {
    drv = pkgs.hello;
    shell = "${busybox}/bin/sh";
  };
in
{
  drvPaths = {
    stream = image.drvPath;
    conf = image.conf.drvPath;
    archive = archive.drvPath;
    oci = (archive.override { format = "oci"; }).drvPath;
    copyTo = image.copyTo.drvPath;
    layer = layer.drvPath;
    withLayer = withLayer.drvPath;
    nixShell = nixShell.drvPath;
    package = pkgs.buildPackages.layered-image.drvPath;
    flakeLib = (layered-image.lib.${buildSystem}.streamLayeredImage { name = "lib"; }).drvPath;
  };
  # the scripts and steps run on the build machine: Darwin
  systems = {
    stream = image.drvAttrs.system;
    conf = image.conf.drvAttrs.system;
    archive = archive.drvAttrs.system;
  };
  buildPlatformIsDarwin = pkgs.stdenv.buildPlatform.isDarwin;
  # the image is for the host platform (Linux's GOARCH)
  architecture = pkgs.go.GOARCH;
  layeredImageOnDarwin = builtins.elem buildSystem pkgs.buildPackages.layered-image.meta.platforms;
  streamCallsBuildBinary =
    let
      plain = builtins.unsafeDiscardStringContext;
    in
    builtins.length (builtins.split (plain "${pkgs.buildPackages.layered-image}/bin/layered-image") (plain image.drvAttrs.buildCommand)) > 1;
}
