# `import nixpkgs { system; overlays; crossSystem; }` for the stand-in. As in
# nixpkgs, the overlays apply to every package set: the native one (also
# the cross set's buildPackages) and the cross one.
{
  system ? builtins.currentSystem,
  overlays ? [ ],
  config ? { },
  crossSystem ? null,
  ...
}:
let
  lib = import ./lib.nix;
  withOverlays = base: lib.fix (builtins.foldl' (f: overlay: lib.extends overlay f) base overlays);
  native = withOverlays (import ./pkgs.nix { inherit lib system overlays; });
in
if crossSystem == null then
  native
else
  withOverlays (
    import ./pkgs.nix {
      inherit
        lib
        system
        crossSystem
        overlays
        ;
      buildPackages = native;
    }
  )
