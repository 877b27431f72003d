# Non-root images on the Nix side: the `perms` and `users` arguments of
# streamLayeredImage (docs/perms.md), and the Nix DB's owners.
#
# Not wired yet (nix/ was being restructured when this was written). The
# wiring in streamLayeredImage (nix/docker-tools.nix) is three lines:
#
#   let nonRoot = import ./users.nix { inherit lib; }; in
#   1. arguments:      perms ? [ ], users ? [ ], runAsUser ? null,
#   2. baseJson:       builtins.toJSON ({ config = nonRoot.config { inherit config runAsUser; };
#                                         inherit architecture; os = "linux"; }
#                                       // nonRoot.confKeys { inherit perms users; })
#      (`conf` copies every key of the base JSON into conf.json, so the keys
#      reach `stream` without touching the conf generator; with neither
#      argument the base JSON, the conf and the image are unchanged.)
#   3. customisationLayer's fakeRootCommands:
#                      (nonRoot.nixDbOwners { inherit includeNixDB uid gid; }) + fakeRootCommands
#
# A `perms` rule's `path` is a derivation; interpolating it keeps its string
# context, so the path is in the base JSON's closure and thus in the image's
# layers (the conf refuses a rule whose path is in no layer). Layers made by
# buildLayer carry digests computed without `perms`: a rule on one of their
# paths makes `stream` report the recorded digest as stale.
{ lib }:
{
  # The conf keys, only when asked for (an absent key keeps nixpkgs' bytes).
  confKeys =
    {
      perms ? [ ],
      users ? [ ],
    }:
    lib.optionalAttrs (perms != [ ]) {
      perms = map (
        rule:
        assert lib.assertMsg (rule ? path) "streamLayeredImage: every entry of perms needs a path (a derivation or store path)";
        rule // { path = "${rule.path}"; }
      ) perms;
    }
    // lib.optionalAttrs (users != [ ]) { inherit users; };

  # config.User when `runAsUser` names one of `users` (or any name the
  # image's /etc/passwd resolves); an explicit config.User is kept.
  config =
    {
      config,
      runAsUser ? null,
    }:
    if runAsUser == null || config ? User then config else config // { User = runAsUser; };

  # nixpkgs writes the Nix DB (includeNixDB) into the customisation layer
  # under fakeroot, owned by root: a non-root user then cannot take the
  # big lock, and `nix-store --verify` fails. Giving /nix and everything
  # under it in that layer the image's uid/gid makes the DB follow them, and
  # keeps that layer's /nix the same as the store layers' (no directory two
  # layers carry with different owners). Runs inside fakeroot, in the
  # layer's root, before the user's fakeRootCommands (which may refine it).
  nixDbOwners =
    {
      includeNixDB,
      uid,
      gid,
    }:
    lib.optionalString (includeNixDB && (toString uid != "0" || toString gid != "0")) ''
      if [ -d nix ]; then chown -R ${toString uid}:${toString gid} nix; fi
    '';
}
