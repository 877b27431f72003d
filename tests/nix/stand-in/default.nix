# `import nixpkgs { system; overlays; }` for the stand-in.
{
  system ? builtins.currentSystem,
  overlays ? [ ],
  config ? { },
  ...
}:
let
  lib = import ./lib.nix;
  base = import ./pkgs.nix { inherit lib system; };
in
lib.fix (builtins.foldl' (f: overlay: lib.extends overlay f) base overlays)
