# Stand-in for nixpkgs' pkgs/build-support/docker/default.nix, reduced to
# its shape: a callPackage'd set whose functions call each other by name
# (buildLayeredImageWithNixDb -> buildLayeredImage, buildNixShellImage ->
# streamNixShellImage, examples -> buildLayeredImage, streamNixShellImage),
# so an overlay that only replaces attributes would miss those users.
# nixpkgs' own implementations are absent: calling one is an error, so a
# test passes only through the layered-image overlay.
{
  lib,
  callPackage,
  runCommand,
  bashInteractive,
  busybox,
  fakeNss,
  # nixpkgs' arguments that its layered functions use, so that
  # `dockerTools.override { pigz = ...; }` is accepted as nixpkgs accepts it
  storeDir ? builtins.storeDir,
  fakeroot,
  proot,
  pigz,
  zstd,
  go,
  writePython3 ? null,
}:
let
  notProvided =
    fn: _:
    throw "stand-in nixpkgs: dockerTools.${fn} (nixpkgs' own implementation) is not provided; the layered-image overlay should have replaced it";
in
rec {
  binSh = runCommand "bin-sh" { } ''
    mkdir -p $out/bin
    ln -s ${bashInteractive}/bin/bash $out/bin/sh
  '';
  usrBinEnv = runCommand "usr-bin-env" { } ''
    mkdir -p $out/usr/bin
    ln -s ${busybox}/bin/env $out/usr/bin/env
  '';
  inherit fakeNss;

  streamLayeredImage = notProvided "streamLayeredImage";
  buildLayeredImage = notProvided "buildLayeredImage";
  buildLayeredImageWithNixDb = args: buildLayeredImage (args // { includeNixDB = true; });
  streamNixShellImage = notProvided "streamNixShellImage";
  buildNixShellImage = args: (streamNixShellImage args).notProvided;

  # not layered-image's business; examples using them are left out
  buildImage = notProvided "buildImage";
  buildImageWithNixDb = notProvided "buildImageWithNixDb";
  pullImage = notProvided "pullImage";
  shadowSetup = "";

  examples = callPackage ./examples.nix {
    inherit
      buildImage
      buildLayeredImage
      fakeNss
      pullImage
      shadowSetup
      buildImageWithNixDb
      streamNixShellImage
      ;
  };
}
