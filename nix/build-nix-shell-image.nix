# dockerTools.buildNixShellImage: streamNixShellImage's image, compressed.
{
  runCommand,
  compressors,
  streamNixShellImage,
}:
{
  drv,
  compressor ? "gz",
  ...
}@args:
let
  stream = streamNixShellImage (builtins.removeAttrs args [ "compressor" ]);
  compress = compressors.forImage compressor drv.name;
in
runCommand "${drv.name}-env.tar${compress.ext}" {
  inherit (stream) imageName;
  passthru = { inherit (stream) imageTag; };
} "${stream} | ${compress.compress} > $out"
