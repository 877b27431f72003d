# nixpkgs' compressors for buildLayeredImage's archive, by name, and the
# layer compression of an OCI layout each stands for.
{ pigz, zstd }:
rec {
  compressors = {
    none = {
      ext = "";
      compress = "cat";
      layerCompression = "none";
    };
    gz = {
      ext = ".gz";
      compress = "${pigz}/bin/pigz -p$NIX_BUILD_CORES -nTR";
      layerCompression = "gzip";
    };
    zstd = {
      ext = ".zst";
      compress = "${zstd}/bin/zstd -T$NIX_BUILD_CORES";
      layerCompression = "zstd";
    };
  };

  forImage =
    compressor: imageName:
    compressors.${compressor}
      or (throw "in docker image ${imageName}: compressor must be one of: [${toString (builtins.attrNames compressors)}]");
}
