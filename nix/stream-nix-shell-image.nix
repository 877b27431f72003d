# dockerTools.streamNixShellImage: a docker image that behaves like
# `nix-shell` for a derivation; as nixpkgs, on top of streamLayeredImage
# (here: layered-image's).
{
  lib,
  pkgs,
  writeText,
  writeShellScriptBin,
  bashInteractive,
  cacert,
  storeDir,
  streamLayeredImage,
}:
{
  drv,
  name ? drv.name + "-env",
  tag ? null,
  uid ? 1000,
  gid ? 1000,
  homeDirectory ? "/build",
  shell ? bashInteractive + "/bin/bash",
  command ? null,
  run ? null,
}:
assert lib.assertMsg (!(drv.drvAttrs.__structuredAttrs or false))
  "streamNixShellImage: Does not work with the derivation ${drv.name} because it uses __structuredAttrs";
assert lib.assertMsg (
  command == null || run == null
) "streamNixShellImage: Can't specify both command and run";
let
  # Like Nix itself turns derivation attributes into environment
  # variables (path literals are copied to the store).
  valueToString =
    value:
    if builtins.typeOf value == "path" then
      "${value}"
    else if builtins.isList value then
      toString (map valueToString value)
    else
      toString value;

  builder = writeShellScriptBin "buildDerivation" ''
    exec ${lib.escapeShellArg (valueToString drv.drvAttrs.builder)} ${
      lib.escapeShellArgs (map valueToString (drv.drvAttrs.args or [ ]))
    }
  '';

  staticPath = "${dirOf shell}:${lib.makeBinPath [ builder ]}";

  # https://github.com/NixOS/nix/blob/2.8.0/src/nix-build/nix-build.cc#L493-L526
  rcfile = writeText "nix-shell-rc" ''
    unset PATH
    dontAddDisableDepTrack=1
    [ -e $stdenv/setup ] && source $stdenv/setup
    PATH=${staticPath}:"$PATH"
    SHELL=${lib.escapeShellArg shell}
    BASH=${lib.escapeShellArg shell}
    set +e
    [ -n "$PS1" -a -z "$NIX_SHELL_PRESERVE_PROMPT" ] && PS1='\n\[\033[1;32m\][nix-shell:\w]\$\[\033[0m\] '
    if [ "$(type -t runHook)" = function ]; then
      runHook shellHook
    fi
    unset NIX_ENFORCE_PURITY
    shopt -u nullglob
    shopt -s execfail
    ${lib.optionalString (command != null || run != null) ''
      ${lib.optionalString (command != null) command}
      ${lib.optionalString (run != null) run}
      exit
    ''}
  '';

  sandboxBuildDir = "/build";

  drvEnv =
    if pkgs ? devShellTools.unstructuredDerivationInputEnv then
      pkgs.devShellTools.unstructuredDerivationInputEnv { inherit (drv) drvAttrs; }
      // pkgs.devShellTools.derivationOutputEnv {
        outputList = drv.outputs;
        outputMap = drv;
      }
    else
      lib.mapAttrs' (
        name: value:
        let
          str = valueToString value;
        in
        if lib.elem name (drv.drvAttrs.passAsFile or [ ]) then
          lib.nameValuePair "${name}Path" (writeText "pass-as-text-${name}" str)
        else
          lib.nameValuePair name str
      ) drv.drvAttrs
      // lib.genAttrs drv.outputs (output: builtins.unsafeDiscardStringContext drv.${output}.outPath);

  envVars = {
    SSL_CERT_FILE = "${cacert}/etc/ssl/certs/ca-bundle.crt";
    NIX_SSL_CERT_FILE = "${cacert}/etc/ssl/certs/ca-bundle.crt";
    PATH = staticPath;
    HOME = homeDirectory;
    NIX_STORE = storeDir;
    NIX_BUILD_CORES = "1";
  }
  // drvEnv
  // {
    NIX_BUILD_TOP = sandboxBuildDir;
    TMPDIR = sandboxBuildDir;
    TEMPDIR = sandboxBuildDir;
    TMP = sandboxBuildDir;
    TEMP = sandboxBuildDir;
    PWD = sandboxBuildDir;
    TERM = "xterm-256color";
  };
in
streamLayeredImage {
  inherit name tag;
  contents = [
    pkgs.dockerTools.binSh
    pkgs.dockerTools.usrBinEnv
    (pkgs.dockerTools.fakeNss.override {
      extraPasswdLines = [
        "nixbld:x:${toString uid}:${toString gid}:Build user:${homeDirectory}:/noshell"
      ];
      extraGroupLines = [ "nixbld:!:${toString gid}:" ];
    })
  ];

  fakeRootCommands = ''
    # Effectively a single-user installation of Nix, giving the user full
    # control over the Nix store.
    mkdir -p ./nix/{store,var/nix} ./etc/nix
    chown -R ${toString uid}:${toString gid} ./nix ./etc/nix

    # Gives the user control over the build directory
    mkdir -p .${sandboxBuildDir}
    chown -R ${toString uid}:${toString gid} .${sandboxBuildDir}
  '';

  config.User = "${toString uid}:${toString gid}";
  config.Cmd = if run == null then [ shell "--rcfile" rcfile ] else [ shell rcfile ];
  config.WorkingDir = sandboxBuildDir;
  config.Env = lib.mapAttrsToList (name: value: "${name}=${value}") envVars;
}
