# layered-image's own, as nix2container's buildLayer: a layer known when
# Nix evaluates, made by a derivation whose inputs are only its store
# paths and what changes its bytes, so that its digests are computed
# once and kept by Nix and its binary caches, and shared by every image
# that uses it. Its paths are the closure of `contents` less the paths
# of the `layers` nested in it. Use the image's uid, gid, uname, gname
# and mtime (the defaults match the image's), or the image recomputes
# the layer's digests. `perms` (docs/perms.md) apply to this layer's paths
# (a rule on a path of another layer is an error); the image applies them
# too. A rule the image's own `perms` adds on this layer's paths makes the
# image recompute the layer's digests.
{
  lib,
  runCommand,
  storeDir,
  exe,
}:
{
  contents ? [ ],
  layers ? [ ],
  name ? "layer",
  uid ? 0,
  gid ? 0,
  uname ? "root",
  gname ? "root",
  mtime ? "1970-01-01T00:00:01Z",
  layerCompression ? "gzip",
  perms ? [ ],
}:
let
  nonRoot = import ./users.nix { inherit lib; };
in
runCommand "${name}.json"
  (
    {
      __structuredAttrs = true;
      exportReferencesGraph.graph = if builtins.isList contents then contents else [ contents ];
      preferLocalBuild = true;
    }
    # read by `layer --perms` from the attrs file
    // lib.optionalAttrs (perms != [ ]) { perms = nonRoot.rules "buildLayer" perms; }
  )
  ''
    # (Nix 2.8's sandbox names the attrs file by its path outside it)
    graph=''${NIX_ATTRS_JSON_FILE:-}; [ -e "$graph" ] || graph=.attrs.json
    ${exe} layer --graph "$graph" --graph-key graph \
      ${lib.concatMapStringsSep " " (l: "--layer ${l}") layers} \
      --store-dir ${storeDir} --uid ${toString uid} --gid ${toString gid} \
      --uname ${lib.escapeShellArg uname} --gname ${lib.escapeShellArg gname} \
      --mtime ${lib.escapeShellArg mtime} --compress ${lib.escapeShellArg layerCompression} \
      ${lib.optionalString (perms != [ ]) ''--perms "$graph" ''}-o ${placeholder "out"}
  ''
