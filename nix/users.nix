# Non-root images on the Nix side (docs/perms.md): the `perms` and `users`
# arguments of streamLayeredImage (and so of buildLayeredImage), and the
# Nix DB's owners. With neither argument every function here returns what
# it was given, so the image is nixpkgs' byte for byte.
{ lib }:
rec {
  # A rule's `path` is a derivation or a store path: interpolating it keeps
  # its string context, so the path is in the base JSON's closure and thus
  # in one of the image's layers (the conf refuses a rule whose path is in
  # no layer).
  rules =
    who: perms:
    map (
      rule:
      assert lib.assertMsg (builtins.isAttrs rule && rule ? path)
        "${who}: every entry of perms needs a path (a derivation or store path)";
      rule // { path = "${rule.path}"; }
    ) perms;

  # The conf keys, only when asked for: `conf` copies every key of the
  # base JSON into conf.json, where `stream` reads them.
  confKeys =
    {
      perms ? [ ],
      users ? [ ],
    }:
    lib.optionalAttrs (perms != [ ]) { perms = rules "streamLayeredImage" perms; }
    // lib.optionalAttrs (users != [ ]) { inherit users; };

  # nixpkgs writes the Nix DB (includeNixDB) into the customisation layer
  # under fakeroot, owned by root, whatever the image's uid/gid: a non-root
  # user cannot then take the DB's big lock, and every `nix` command fails.
  # In a non-root image (`users` or `perms` given) /nix and everything under
  # it in that layer get the owners the store layers give /nix and
  # /nix/store, and /nix, /nix/store the store layers' mode 0755 (Nix
  # makes the store 1775 as root), so that no directory two layers carry
  # differs. Runs in fakeroot in the layer's root, before the user's
  # fakeRootCommands, which may refine it.
  nixDbOwners =
    {
      includeNixDB,
      uid,
      gid,
      perms,
      users,
    }:
    lib.optionalString (includeNixDB && (perms != [ ] || users != [ ])) ''
      if [ -d nix ]; then
        chown -R ${toString uid}:${toString gid} nix
        chmod 0755 nix
        if [ -d nix/store ]; then chmod 0755 nix/store; fi
      fi
    '';
}
