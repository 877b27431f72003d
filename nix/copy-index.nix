# layered-image's own: one script that pushes a multi-platform image —
# an OCI image index naming the `images` (built for several systems) by
# platform — as no Nix tool does today:
#   nix run .#multi -- [DEST] [OPTIONS...]   (DEST: docker://NAME:TAG of the first image)
{
  lib,
  runCommand,
  buildShell,
  exe,
}:
{
  images,
  name ? (lib.head images).imageName,
  tag ? (lib.head images).imageTag,
  layerCompression ? "gzip",
}:
runCommand "copy-index-${baseNameOf name}" { meta.mainProgram = "copy-index"; } ''
  mkdir -p $out/bin
  cat > $out/bin/copy-index <<'EOF'
  #!${buildShell}
  export LAYERED_IMAGE_COMPRESS=''${LAYERED_IMAGE_COMPRESS:-${layerCompression}}
  exec ${exe} copy --index --default-dest ${lib.escapeShellArg "docker://${name}:${tag}"} ${lib.concatMapStringsSep " " (i: "${i.copyConf}") images} "$@"
  EOF
  chmod +x $out/bin/copy-index
''
