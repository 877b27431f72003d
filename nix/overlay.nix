# nixpkgs overlay: `dockerTools.streamLayeredImage` and everything built on it
# (buildLayeredImage, buildLayeredImageWithNixDb, streamNixShellImage,
# buildNixShellImage) use the layered-image binary instead of nixpkgs' Python
# stream script, layering scripts, jq conf step and GNU tar customisation layer.
# Everything else in dockerTools is left as nixpkgs has it.
final: prev: {
  layered-image = final.callPackage ./package.nix { };

  dockerTools =
    prev.dockerTools
    // import ./docker-tools.nix {
      pkgs = final;
      # it runs at build time (and on the machine that streams the image)
      layered-image = final.buildPackages.layered-image;
    };
}
