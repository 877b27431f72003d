# passthru.explain: `nix run .#image.explain [-- FILE [explain flags]]`
# prints what each layer holds and why, and writes the HTML page (a
# treemap and the table) to FILE, ./result-explain by default.
#
# The layering rule of each store path is recomputed from the closure
# graph with the very flags the conf derivation was given, so this needs
# the graph as a file: a small derivation exports it (the same
# exportReferencesGraph as the conf derivation's, so the same graph).
{
  runCommand,
  buildShell,
  exe,
}:
{
  baseName,
  # The conf to explain (copyConf: its recorded digests spare reading layers).
  conf,
  closureRoots,
  # What the conf derivation passed to `layered-image conf`.
  layeringArgs,
  excludePaths,
  layers,
}:
let
  graph =
    runCommand "${baseName}-closure-graph.json"
      {
        __structuredAttrs = true;
        exportReferencesGraph.graph = closureRoots;
        preferLocalBuild = true;
      }
      ''
        # Nix 2.8's sandbox names the attrs file by its path outside the
        # sandbox; it is in the build directory (as for the conf).
        graph=''${NIX_ATTRS_JSON_FILE:-}; [ -e "$graph" ] || graph=.attrs.json
        cp "$graph" ${placeholder "out"}
      '';
  flags = builtins.concatStringsSep " " (
    map (a: "'${a}'") (
      layeringArgs ++ builtins.concatMap (p: [ "--exclude" "${p}" ]) excludePaths ++ builtins.concatMap (l: [ "--layer" "${l}" ]) layers
    )
  );
in
runCommand "explain-${baseName}" { meta.mainProgram = "explain"; } ''
  mkdir -p $out/bin
  cat > $out/bin/explain <<'EOF'
  #!${buildShell}
  html=''${1:-./result-explain}
  if [ $# -gt 0 ]; then shift; fi
  exec ${exe} explain ${conf} --graph ${graph} --graph-key graph ${flags} --html "$html" "$@"
  EOF
  chmod +x $out/bin/explain
''
