# The layered-image binary, built from this repository with the Cargo.lock
# it ships (no vendor hash to maintain).
{
  lib,
  rustPlatform,
}:

let
  root = ../.;
  cargoToml = builtins.fromTOML (builtins.readFile ../Cargo.toml);

  # Only what cargo needs: changes to the Nix files, docs or the Nix test
  # harness must not rebuild the binary.
  src = builtins.path {
    path = root;
    name = "layered-image-source";
    filter =
      path: type:
      let
        rel = lib.removePrefix (toString root + "/") (toString path);
        top = lib.head (lib.splitString "/" rel);
      in
      !(builtins.elem top [
        ".git"
        "target"
        "result"
        "nix"
        "docs"
        "flake.nix"
        "flake.lock"
      ])
      && !(lib.hasPrefix "tests/nix" rel)
      && !(lib.hasPrefix "result-" rel);
  };
in
rustPlatform.buildRustPackage {
  pname = cargoToml.package.name;
  version = cargoToml.package.version;
  inherit src;
  cargoLock.lockFile = ../Cargo.lock;

  # The integration tests need docker, nix and friends; the project's own
  # test runner executes them.
  doCheck = false;

  meta = {
    description = "Container images from Nix store closures, compatible with nixpkgs' dockerTools.streamLayeredImage";
    mainProgram = "layered-image";
    license = lib.licenses.mit;
    platforms = lib.platforms.unix;
  };
}
