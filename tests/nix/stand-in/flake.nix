{
  description = "Stand-in for nixpkgs (tests only): the few functions layered-image's nix/ folder uses, over builtins.derivation and host tools";

  outputs =
    { self }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
    in
    {
      lib = import ./lib.nix;
      legacyPackages = self.lib.genAttrs systems (system: import ./. { inherit system; });
    };
}
