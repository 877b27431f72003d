# The SBOM of a streamLayeredImage image (its `sbom` argument, exposed as
# passthru.sbom): `layered-image sbom` of the image's conf, in its own
# derivation inside the sandbox. The closure graph comes from Nix itself
# (exportReferencesGraph of the same roots the conf was made from), so the
# conf, and every byte of the image, stay as they are without `sbom`.
# What Nix knows of the direct contents at evaluation time (pname,
# version, meta.license's SPDX ids, meta.homepage, meta.description) is
# passed in; transitive paths get what their store path names and the
# graph say, nothing more (Nix exports no meta for them).
{
  lib,
  runCommand,
  writeText,
  exe,
}:
{
  baseName,
  conf,
  format,
  closureRoots,
  contents,
}:
let
  formats = {
    spdx = {
      flag = "spdx-json";
      suffix = "spdx.json";
    };
    cyclonedx = {
      flag = "cyclonedx-json";
      suffix = "cdx.json";
    };
  };
  chosen =
    formats.${format}
      or (throw "streamLayeredImage: sbom must be \"spdx\", \"cyclonedx\" or null, not ${builtins.toJSON format}");

  # An SPDX expression of meta.license where every license names its SPDX
  # id (a list: all of them apply); null where any does not.
  licenseOf =
    l:
    if builtins.isList l then
      let
        ids = map licenseOf l;
      in
      if ids != [ ] && builtins.all (i: i != null) ids then
        (if builtins.length ids == 1 then builtins.head ids else lib.concatMapStringsSep " AND " (i: "(${i})") ids)
      else
        null
    else if builtins.isAttrs l && l ? spdxId then
      l.spdxId
    else
      null;
  firstString =
    v:
    if builtins.isString v then
      v
    else if builtins.isList v && v != [ ] && builtins.isString (builtins.head v) then
      builtins.head v
    else
      null;
  metaOf =
    drv:
    let
      m = drv.meta or { };
      known = {
        pname = drv.pname or null;
        version = drv.version or null;
        license = licenseOf (m.license or null);
        homepage = firstString (m.homepage or null);
        description = m.description or null;
      };
    in
    lib.filterAttrs (_: v: v != null && v != "") known;
  isDerivation = x: builtins.isAttrs x && (x.type or null) == "derivation";
  direct = builtins.filter isDerivation (if builtins.isList contents then contents else [ contents ]);
  metaFile = writeText "${baseName}-sbom-meta.json" (
    # Keyed by store path (a name carries no string context; the paths are in
    # the graph anyway).
    builtins.toJSON (builtins.listToAttrs (map (d: lib.nameValuePair (builtins.unsafeDiscardStringContext d.outPath) (metaOf d)) direct))
  );
in
runCommand "${baseName}-sbom.${chosen.suffix}"
  {
    __structuredAttrs = true;
    exportReferencesGraph.graph = closureRoots;
    preferLocalBuild = true;
  }
  ''
    # As the conf's derivation: Nix 2.8's sandbox names the attrs file by
    # its path outside the sandbox; it is in the build directory.
    graph=''${NIX_ATTRS_JSON_FILE:-}; [ -e "$graph" ] || graph=.attrs.json
    ${exe} sbom ${conf} --graph "$graph" --graph-key graph \
      --format ${chosen.flag} --meta ${metaFile} -o ${placeholder "out"}
  ''
