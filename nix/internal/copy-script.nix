# A runnable script (`nix run .#image.copyTo -- oci:./out:latest`):
# `layered-image copy` of an image's conf, `dest` (shell) run first to set
# the destination in front of the user's arguments, or nothing: then the
# user names the destination.
{ runCommand, buildShell, exe }:
{
  name,
  baseName,
  conf,
  layerCompression,
  dest ? "",
}:
runCommand "${name}-${baseName}" { meta.mainProgram = name; } ''
  mkdir -p $out/bin
  cat > $out/bin/${name} <<'EOF'
  #!${buildShell}
  export LAYERED_IMAGE_COMPRESS=''${LAYERED_IMAGE_COMPRESS:-${layerCompression}}
  ${dest}
  exec ${exe} copy ${conf} "$@"
  EOF
  chmod +x $out/bin/${name}
''
