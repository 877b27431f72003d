{
  # A consumer of layered-image, as a user would write it. tests/nix/run.sh
  # overrides both inputs (no network here):
  #   --override-input layered-image path:<copy of the repo>
  #   --override-input nixpkgs path:<copy of tests/nix/stand-in>
  description = "layered-image Nix integration test images";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.layered-image.url = "github:example/layered-image";
  inputs.layered-image.inputs.nixpkgs.follows = "nixpkgs";

  outputs =
    {
      self,
      nixpkgs,
      layered-image,
    }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems f;
    in
    {
      # Images built through the overlay (pkgs.dockerTools.*) and, for a few,
      # through layered-image.lib.<system> (no overlay).
      tests = forAllSystems (
        system:
        import ./images.nix {
          pkgs = import nixpkgs {
            inherit system;
            overlays = [ layered-image.overlays.default ];
          };
          plainPkgs = nixpkgs.legacyPackages.${system};
          li = layered-image.lib.${system};
        }
      );
      legacyPackages = forAllSystems (
        system: self.tests.${system}.images // { inherit (self.tests.${system}) examples; }
      );
      testInfo = forAllSystems (
        system:
        self.tests.${system}.testInfo
        // {
          outPaths = builtins.mapAttrs (_: image: image.outPath) self.tests.${system}.images;
        }
      );
      errors = forAllSystems (system: self.tests.${system}.errors);
      # Darwin build machines making Linux images: evaluated, not built
      darwin = nixpkgs.lib.genAttrs [ "x86_64-darwin" "aarch64-darwin" ] (
        buildSystem: import ./darwin.nix { inherit nixpkgs layered-image buildSystem; }
      );
    };
}
