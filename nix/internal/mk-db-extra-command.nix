# extraCommands that register `contents`' closure in a Nix database inside
# the customisation layer (includeNixDB), as nixpkgs writes them.
{
  lib,
  buildNix,
  sqlite,
  closureInfo,
}:
contents:
let
  contentsList = if builtins.isList contents then contents else [ contents ];
in
''
  echo "Generating the nix database..."
  echo "Warning: only the database of the deepest Nix layer is loaded."
  echo "         If you want to use nix commands in the container, it would"
  echo "         be better to only have one layer that contains a nix store."

  export NIX_REMOTE=local?root=$PWD
  # A user is required by nix
  export USER=nobody
  ${buildNix}/bin/nix-store --load-db < ${closureInfo { rootPaths = contentsList; }}/registration
  # Reset registration times to make the image reproducible
  ${sqlite}/bin/sqlite3 nix/var/nix/db/db.sqlite "UPDATE ValidPaths SET registrationTime = ''${SOURCE_DATE_EPOCH}"

  mkdir -p nix/var/nix/gcroots/docker/
  for i in ${lib.concatStringsSep " " contentsList}; do
  ln -s $i nix/var/nix/gcroots/docker/$(basename $i)
  done;
''
