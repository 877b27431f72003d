# A runnable script (`nix run .#image.copyTo -- oci:./out:latest`):
# `layered-image copy SOURCE`, `dest` (shell) run first to set the
# destination (and flags) in front of the user's arguments, or nothing:
# then the user names the destination. SOURCE is the image's conf, or
# (buildLayeredImage's format = "oci") `oci:LAYOUT:TAG` for destinations
# that take an image (docker://, oci:, oci-archive:), whose compressed
# blobs are then passed through as they are: only the conf makes
# docker-archive: and docker-daemon: images.
{
  runCommand,
  buildShell,
  exe,
}:
{
  name,
  baseName,
  conf,
  layerCompression,
  dest ? "",
  # `oci:LAYOUT[:TAG]` (shell words), or null.
  layout ? null,
}:
runCommand "${name}-${baseName}" { meta.mainProgram = name; } ''
  mkdir -p $out/bin
  cat > $out/bin/${name} <<'EOF'
  #!${buildShell}
  export LAYERED_IMAGE_COMPRESS=''${LAYERED_IMAGE_COMPRESS:-${layerCompression}}
  ${dest}
  ${
    if layout == null then
      ''exec ${exe} copy ${conf} "$@"''
    else
      ''
        source=${conf}
        for a; do
          case $a in
            docker://* | oci:* | oci-archive:*) source=${layout} ;;
          esac
        done
        for a; do
          case $a in
            docker-daemon:* | docker-archive:*) source=${conf} ;;
          esac
        done
        exec ${exe} copy "$source" "$@"''
  }
  EOF
  chmod +x $out/bin/${name}
''
