# nixpkgs overlay: `dockerTools.streamLayeredImage` and everything built on it
# (buildLayeredImage, buildLayeredImageWithNixDb, streamNixShellImage,
# buildNixShellImage) use the layered-image binary instead of nixpkgs' Python
# stream script, layering scripts, jq conf step and GNU tar customisation layer.
# Everything else in dockerTools is left as nixpkgs has it.
#
# nixpkgs' dockerTools set calls its own functions by name, not through
# pkgs: `dockerTools.examples` is built from its arguments, and
# `dockerTools.override { ... }` makes a fresh nixpkgs set. Both are
# re-pointed at these functions, so that nothing in dockerTools still
# reaches the Python implementation; the arguments given to
# `dockerTools.override` (pigz, fakeroot, storeDir, ...) reach these
# functions too, as they reach nixpkgs' own.
final: prev:
let
  lib = final.lib;
  dockerToolsFile = ./docker-tools.nix;
  ourArgs = builtins.removeAttrs (lib.functionArgs (import dockerToolsFile)) [
    "pkgs"
    "layered-image"
  ];
  replace =
    nixpkgsDockerTools: overrides:
    let
      ours = import dockerToolsFile (
        {
          pkgs = final;
          # it runs at build time (and on the machine that streams the image)
          layered-image = final.buildPackages.layered-image;
        }
        // builtins.intersectAttrs ourArgs overrides
      );
    in
    nixpkgsDockerTools
    // ours
    // lib.optionalAttrs (nixpkgsDockerTools ? examples.override) {
      examples = nixpkgsDockerTools.examples.override (
        builtins.intersectAttrs (lib.functionArgs nixpkgsDockerTools.examples.override) ours
      );
    }
    // lib.optionalAttrs (nixpkgsDockerTools ? override) {
      # nixpkgs' override merges with the earlier overrides; so do ours. A
      # function (`old: { ... }`) sees the arguments given so far.
      override =
        args:
        replace (nixpkgsDockerTools.override args) (
          overrides // (if lib.isFunction args then args overrides else args)
        );
    };
in
{
  layered-image = final.callPackage ./package.nix { };
  dockerTools = replace prev.dockerTools { };
}
