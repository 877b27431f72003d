# dockerTools.buildLayeredImage: streamLayeredImage's image, compressed
# with `compressor` (as nixpkgs), or, with layered-image's own
# format = "oci", an OCI image layout.
{
  lib,
  runCommand,
  exe,
  compressors,
  copyScript,
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
    # With format = "oci", copyTo and copyToRegistry push the layout's
    # blobs as they are (compressed once, by the build, and kept by binary
    # caches): a push costs the upload only. The conf still makes
    # docker-archive: and docker-daemon: images. A user's passthru wins.
    ociCopy =
      layout:
      let
        copy =
          name: dest:
          copyScript {
            inherit name dest;
            baseName = baseNameOf args.name;
            conf = stream.copyConf;
            inherit (compress) layerCompression;
            layout = "oci:${layout}${ociRef}";
          };
        tagArgs = lib.concatMapStrings (t: " --additional-tag ${lib.escapeShellArg t}") (args.extraTags or [ ]);
      in
      builtins.removeAttrs {
        copyTo = copy "copy-to" "";
        copyToRegistry = copy "copy-to-registry" ''set -- "docker://${stream.imageName}:${stream.imageTag}"${tagArgs} "$@"'';
      } (builtins.attrNames (args.passthru or { }));
    layout = runCommand "${baseNameOf name}-oci" {
      inherit (stream) imageName;
      passthru = passthru // ociCopy layout;
      meta = args.meta or { };
    } "${exe} copy ${stream.conf} oci:$out${ociRef} --compress ${compress.layerCompression}";
  in
  assert lib.assertMsg (builtins.elem format [
    "docker-archive"
    "oci"
  ]) "in docker image ${name}: format must be one of: [docker-archive oci]";
  if format == "oci" then
    layout
  else
    runCommand "${baseNameOf name}.tar${compress.ext}" {
      inherit (stream) imageName;
      inherit passthru;
      meta = args.meta or { };
    } "${stream} | ${compress.compress} > $out"
)
