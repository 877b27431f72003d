# passthru.streamScript: `layered-image stream CONF "$@"`, as nixpkgs'
# Python script is called. It runs on the build machine (and wherever the
# image is streamed), so it uses the build platform's shell.
{ writeScript, buildShell, exe }:
writeScript "stream" ''
  #!${buildShell}
  exec ${exe} stream "$@"
''
