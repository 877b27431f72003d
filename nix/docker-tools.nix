# Drop-in replacements for nixpkgs' dockerTools.streamLayeredImage family,
# one function per file beside this one; this file only wires them
# together (each gets what its argument list names from `scope`).
#
# The arguments after `layered-image` are nixpkgs' dockerTools arguments
# that its layered functions use: `dockerTools.override { pigz = ...; }`
# reaches these through the overlay, as it reaches nixpkgs' own. Each
# defaults to what nixpkgs' callPackage would give (tools that run at
# build time from buildPackages).
{
  pkgs,
  layered-image ? pkgs.buildPackages.layered-image,
  lib ? pkgs.lib,
  stdenv ? pkgs.stdenv,
  storeDir ? builtins.storeDir,
  fakeroot ? pkgs.buildPackages.fakeroot,
  proot ? pkgs.buildPackages.proot,
  pigz ? pkgs.buildPackages.pigz,
  zstd ? pkgs.buildPackages.zstd,
  go ? pkgs.go,
  closureInfo ? pkgs.closureInfo,
  runCommand ? pkgs.runCommand,
  symlinkJoin ? pkgs.symlinkJoin,
  writeText ? pkgs.writeText,
  writeScript ? pkgs.writeScript,
  writeShellScriptBin ? pkgs.writeShellScriptBin,
  bashInteractive ? pkgs.bashInteractive,
  cacert ? pkgs.cacert,
}:

let
  scope = {
    inherit
      pkgs
      lib
      stdenv
      storeDir
      fakeroot
      proot
      pigz
      zstd
      closureInfo
      runCommand
      symlinkJoin
      writeText
      writeScript
      writeShellScriptBin
      bashInteractive
      cacert
      ;
    exe = "${layered-image}/bin/layered-image";
    # Scripts that run on the build machine (the stream executable, which
    # also runs wherever the image is streamed, streamScript, copyTo) use
    # the build platform's shell, as nixpkgs' do: a cross-compiled image's
    # scripts must run where it is built.
    buildShell = pkgs.buildPackages.runtimeShell;
    # As nixpkgs (mkDbExtraCommand): the build platform's nix and sqlite.
    buildNix = pkgs.buildPackages.nix;
    sqlite = pkgs.buildPackages.sqlite;
    # As nixpkgs: the OCI spec recommends Go's GOARCH (and GOARM) names.
    defaultArchitecture = go.GOARCH;
    defaultVariant = lib.optionalString ((go.GOARM or "") != "") "v${go.GOARM}";
  }
  // internal
  // public;

  call =
    file:
    let
      f = import file;
    in
    f (builtins.intersectAttrs (lib.functionArgs f) scope);

  internal = {
    mkDbExtraCommand = call ./internal/mk-db-extra-command.nix;
    compressors = call ./internal/compressors.nix;
    streamScript = call ./internal/stream-script.nix;
    copyScript = call ./internal/copy-script.nix;
    sbomDocument = call ./sbom.nix;
    explainScript = call ./explain.nix;
  };

  public = {
    streamLayeredImage = call ./stream-layered-image.nix;
    buildLayeredImage = call ./build-layered-image.nix;
    buildLayeredImageWithNixDb = args: public.buildLayeredImage (args // { includeNixDB = true; });
    streamNixShellImage = call ./stream-nix-shell-image.nix;
    buildNixShellImage = call ./build-nix-shell-image.nix;
    buildLayer = call ./build-layer.nix;
    copyIndex = call ./copy-index.nix;
  };
in
public
