{
  description = "layered-image: nixpkgs' dockerTools.streamLayeredImage, in Rust";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      linuxSystems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      # Darwin builds Linux images too (the store paths are Linux's; the
      # binary runs on the build machine).
      systems = linuxSystems ++ [
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      forSystems = systems: f: nixpkgs.lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});
      forAllSystems = forSystems systems;
    in
    {
      # pkgs.extend layered-image.overlays.default, or
      # import nixpkgs { overlays = [ layered-image.overlays.default ]; }
      overlays.default = import ./nix/overlay.nix;

      packages = forAllSystems (
        system: pkgs: {
          layered-image = pkgs.callPackage ./nix/package.nix { };
          default = self.packages.${system}.layered-image;
        }
      );

      apps = forAllSystems (
        system: pkgs: {
          default = {
            type = "app";
            program = "${self.packages.${system}.default}/bin/layered-image";
          };
        }
      );

      # For users who do not want the overlay:
      #   layered-image.lib.${system}.streamLayeredImage { name = ...; ... }
      # (and lib.${system}.forPkgs pkgs for another nixpkgs instance).
      lib = forAllSystems (
        system: pkgs:
        let
          forPkgs =
            pkgs:
            import ./nix/docker-tools.nix {
              inherit pkgs;
              layered-image = pkgs.buildPackages.callPackage ./nix/package.nix { };
            };
        in
        forPkgs pkgs // { inherit forPkgs; }
      );

      # (built by `nix flake check`; Darwin's cannot be built here)
      checks = forSystems linuxSystems (
        system: pkgs: {
          layered-image = self.packages.${system}.layered-image;
        }
      );
    };
}
