# dockerTools.buildLayeredImage: streamLayeredImage's image, compressed
# with `compressor` (as nixpkgs), or, with layered-image's own
# format = "oci", an OCI image layout.
{
  lib,
  runCommand,
  exe,
  compressors,
  streamLayeredImage,
}:
lib.makeOverridable (
  {
    name,
    compressor ? "gz",
    # layered-image's own: "oci" makes the output an OCI image layout
    # (a directory; layers compressed with `compressor`, the image named
    # by its tag) instead of a compressed docker-archive.
    format ? "docker-archive",
    ...
  }@args:
  let
    compress = compressors.forImage compressor name;
    stream = streamLayeredImage (
      builtins.removeAttrs args [
        "compressor"
        "format"
        "meta"
      ]
      // lib.optionalAttrs (format == "oci") { inherit (compress) layerCompression; }
    );
    passthru = {
      inherit (stream)
        imageTag
        copyConf
        copyTo
        copyToRegistry
        copyToDockerDaemon
        copyToPodman
        explain
        ;
      inherit stream;
    };
    # A tag the layout's grammar refuses (nixpkgs takes any) names nothing.
    ociRef = lib.optionalString (builtins.match "[A-Za-z0-9]+(([-._:@+]|--|/)[A-Za-z0-9]+)*" stream.imageTag != null) ":${lib.escapeShellArg stream.imageTag}";
  in
  assert lib.assertMsg (builtins.elem format [
    "docker-archive"
    "oci"
  ]) "in docker image ${name}: format must be one of: [docker-archive oci]";
  if format == "oci" then
    runCommand "${baseNameOf name}-oci" {
      inherit (stream) imageName;
      inherit passthru;
      meta = args.meta or { };
    } "${exe} copy ${stream.conf} oci:$out${ociRef} --compress ${compress.layerCompression}"
  else
    runCommand "${baseNameOf name}.tar${compress.ext}" {
      inherit (stream) imageName;
      inherit passthru;
      meta = args.meta or { };
    } "${stream} | ${compress.compress} > $out"
)
