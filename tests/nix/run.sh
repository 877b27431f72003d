#!/usr/bin/env bash
# Nix integration tests for layered-image (flake, overlay, lib, nix/ wrappers).
#
#   tests/nix/run.sh            (as root, after tests/install-deps.sh)
#
# 1. cargo build --release; a temporary copy of the stand-in nixpkgs
#    (tests/nix/stand-in) gets target/release/layered-image as its
#    "buildRustPackage" result;
# 2. every .nix file parses; `nix flake show` / `nix flake check` / `nix run`
#    on the repo's flake with nixpkgs overridden by the stand-in;
# 3. builds the images of tests/nix/images.nix through the test flake
#    tests/nix/flake.nix (overlay + lib, as a user would);
# 4. loads them into a private dockerd, runs them and checks what nixpkgs'
#    nixos/tests/docker-tools.nix checks.
# Prints "N passed, N failed" and exits non-zero on any failure.
#
# Environment: LI_NIX_KEEP=1 keeps the temporary directory;
# LI_NIX_DOCKER_DIR (default /tmp/li-nix-docker) is the dockerd state dir;
# LI_NIX_BINARY=path uses that binary instead of building with cargo.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"

die() { echo "tests/nix/run.sh: $*" >&2; exit 1; }

# LI_NIX_DOCKER_HOST: use that docker engine instead of starting one
# (run-trixie.sh: the host's, from inside the chroot); LI_NIX_HOST_STORE:
# where that engine finds this Nix store (for --volume).
tools="nix nix-instantiate nix-store git docker skopeo docker-registry jq tar gzip zstd pigz python3 fakeroot proot ldd sha256sum"
[ -n "${LI_NIX_BINARY:-}" ] || tools+=" cargo"
[ -n "${LI_NIX_DOCKER_HOST:-}" ] || tools+=" dockerd podman"
host_store=${LI_NIX_HOST_STORE:-/nix/store}
for tool in $tools; do
  command -v "$tool" >/dev/null || die "required tool '$tool' is missing (run tests/install-deps.sh as root)"
done
[ -x /bin/busybox ] || die "/bin/busybox (busybox-static) is missing (run tests/install-deps.sh as root)"
[ "$(id -u)" = 0 ] || die "must run as root (single-user Nix store, dockerd)"

# Nix offline, single user, no daemon, in the sandbox (as nixpkgs' users
# build): /build as the working directory, HOME=/homeless-shelter, no
# network. The stand-in nixpkgs has no bootstrap of its own: its builders
# are the host's /bin/bash with the host's tools, so the host's /bin, /usr,
# /lib, /lib64 and /etc/alternatives (Debian's tool links) are bound in
# (sandbox-paths; a merged-/usr symlink is bound as the directory it names,
# and the list replaces Nix's default /bin/sh); layered-image's nix/ files
# use only store paths. sandbox-fallback = false: a machine that cannot
# sandbox fails the run instead of building unsandboxed.
sandbox_paths=
for d in /bin /usr /lib /lib64 /etc/alternatives; do
  [ -e "$d" ] || continue
  if [ -L "$d" ]; then sandbox_paths+=" $d=$(readlink -f "$d")"; else sandbox_paths+=" $d"; fi
done
export NIX_CONFIG=$'experimental-features = nix-command flakes\nsubstituters =\nbuild-users-group =\nsandbox = true\nsandbox-fallback = false\nsandbox-paths ='"$sandbox_paths"$'\nmax-jobs = auto\nwarn-dirty = false'
mkdir -p /nix/var/nix/gcroots/per-user/root 2>/dev/null || true
echo "== $(nix --version)" >&2
# the stand-in's foreign (cross host) tools refuse to run where this is set
export LI_STAND_IN_BUILD_MACHINE=1

passed=0 failed=0
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}"; }
# check NAME CMD...: passes when CMD succeeds
check() { local n=$1; shift; if out=$("$@" 2>&1); then pass "$n"; else fail "$n" "$(printf '%s' "$out" | tail -5)"; fi; }
# expect NAME EXPECTED ACTUAL
expect() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected '$2', got '$3'"; fi; }

tmp=$(mktemp -d /tmp/li-nix.XXXXXX)
docker_dir=${LI_NIX_DOCKER_DIR:-/tmp/li-nix-docker}
docker_started=
cleanup() {
  if [ -n "$docker_started" ]; then
    local pid; pid=$(cat "$docker_dir/dockerd.pid" 2>/dev/null || true)
    "$repo/tests/support/dockerd.sh" stop "$docker_dir" || true
    # wait for this dockerd to exit, so that a next run starts a fresh one
    for _ in $(seq 1 40); do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  fi
  [ -z "${regpid:-}" ] || kill "$regpid" 2>/dev/null || true
  [ -z "${podpid:-}" ] || kill "$podpid" 2>/dev/null || true
  if [ -z "${LI_NIX_KEEP:-}" ]; then rm -rf "$tmp"; else echo "kept $tmp" >&2; fi
}
trap cleanup EXIT

# --- 1. binary, sources, stand-in -------------------------------------------
if [ -n "${LI_NIX_BINARY:-}" ]; then
  binary=$LI_NIX_BINARY
else
  echo "== cargo build --release" >&2
  cargo build --release --quiet --bin layered-image
  binary=$repo/target/release/layered-image
fi
[ -x "$binary" ] || die "no binary at $binary"

# The flakes see what git sees (tracked + untracked-not-ignored files), not target/.
mkdir -p "$tmp/src" "$tmp/stand-in/bin"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [ -e "$f" ] && cp --parents -P -- "$f" "$tmp/src/"
done
cp -r tests/nix/stand-in/. "$tmp/stand-in/"
cp "$binary" "$tmp/stand-in/bin/layered-image"

src=path:$tmp/src
testflake=path:$tmp/src/tests/nix
overrides=(--no-write-lock-file --override-input nixpkgs "path:$tmp/stand-in")
testoverrides=("${overrides[@]}" --override-input layered-image "$src")
system=$(nix eval --impure --raw --expr builtins.currentSystem)
quiet() { grep -v -e '^warning: not writing modified lock file' -e '^• ' -e "^    '" -e '^    follows' -e "^warning: unknown flake output 'lib'" || true; }

# --- 2. parse, flake show/check, nix run ------------------------------------
while IFS= read -r f; do
  check "parse $f" nix-instantiate --parse "$f"
done < <(git ls-files --cached --others --exclude-standard '*.nix')

check "nix flake show (repo)" nix flake show "$src" "${overrides[@]}"
check "nix flake check (repo, builds checks)" nix flake check "$src" "${overrides[@]}"
check "nix flake show (test flake)" nix flake show "$testflake" "${testoverrides[@]}" --legacy
out=$(nix run "$src" "${overrides[@]}" -- --help 2>&1 | quiet) || true
case $out in *stream*) pass "nix run (apps.default) --help lists stream" ;; *) fail "nix run (apps.default)" "$out" ;; esac
for s in x86_64-linux aarch64-linux; do
  check "eval packages.$s.default" nix eval --raw "$src#packages.$s.default.drvPath" "${overrides[@]}"
  check "eval lib.$s.streamLayeredImage" nix eval --raw "$src#lib.$s.streamLayeredImage" --apply 'f: (f { name = "x"; }).drvPath' "${overrides[@]}"
done

# created/mtime: any form GNU date reads, as nixpkgs' `date -Iseconds -d` (UTC)
mapfile -t date_forms < <(nix eval --json "$testflake#testInfo.$system.dateForms" "${testoverrides[@]}" 2>/dev/null | jq -r '.[]')
mapfile -t date_drvs < <(nix eval --json "$testflake#testInfo.$system.dateConfDrvs" "${testoverrides[@]}" 2>/dev/null | jq -r '.[]')
if [ "${#date_forms[@]}" -gt 0 ] && [ "${#date_forms[@]}" = "${#date_drvs[@]}" ] \
  && mapfile -t date_confs < <(nix-store -r "${date_drvs[@]}" 2>/dev/null) && [ "${#date_confs[@]}" = "${#date_forms[@]}" ]; then
  for k in "${!date_forms[@]}"; do
    d=${date_forms[$k]} c=${date_confs[$k]}
    gnu=$(TZ=UTC date -Iseconds -d "$d")
    expect "created = \"$d\" (Nix): GNU date's answer" "$gnu $gnu" "$(jq -r '"\(.created) \(.mtime)"' "$c" 2>&1)"
  done
else
  fail "created/mtime in GNU date's forms (Nix)" "the conf derivations did not build"
fi

# nixpkgs' error messages
out=$(nix eval --raw "$testflake#errors.$system.maxLayers" "${testoverrides[@]}" 2>&1) && fail "maxLayers = 1 is rejected" "evaluated" \
  || case $out in *"the maxLayers argument of dockerTools.buildLayeredImage function must be greather than 1 (current value: 1)"*) pass "maxLayers = 1 is rejected with nixpkgs' message" ;; *) fail "maxLayers message" "$out" ;; esac
out=$(nix eval --raw "$testflake#errors.$system.compressor" "${testoverrides[@]}" 2>&1) && fail "bad compressor is rejected" "evaluated" \
  || case $out in *"in docker image bad: compressor must be one of: [gz none zstd]"*) pass "bad compressor is rejected with nixpkgs' message" ;; *) fail "compressor message" "$out" ;; esac

out=$(nix eval --raw "$testflake#errors.$system.format" "${testoverrides[@]}" 2>&1) && fail "bad format is rejected" "evaluated" \
  || case $out in *"in docker image bad: format must be one of: [docker-archive oci]"*) pass "bad format is rejected" ;; *) fail "format message" "$out" ;; esac

info=$(nix eval --json "$testflake#testInfo.$system" "${testoverrides[@]}" 2>/dev/null) || die "cannot evaluate testInfo"
inf() { jq -r ".$1" <<<"$info"; }
expect "passthru.isExe of a stream" true "$(inf streamIsExe)"
expect "passthru.stream of buildLayeredImage" true "$(inf buildHasStream)"
expect "passthru.conf of a stream" true "$(inf confIsPassthru)"
expect "user passthru is kept" kept "$(inf userPassthru)"
expect "meta is the result's meta" "dated test image" "$(inf metaDescription)"
expect ".override (makeOverridable)" overridden "$(inf overrideTag)"
expect "enableFakechroot = true evaluates" true "$(inf fakechrootEvaluates)"
expect "imageName = toLower name" example/upper "$(inf upperCaseImageName)"
expect "derivation name stream-<baseNameOf name>" stream-UPPER "$(inf upperCaseStreamName)"

# passthru.imageTag of tag = null: no string context (nixpkgs discards it)
expect "tag = null: streamLayeredImage's imageTag has no string context" false "$(inf noTagStreamTagContext)"
expect "tag = null: buildLayeredImage's imageTag has no string context" false "$(inf noTagBuildTagContext)"
expect "tag = null: examples.bashNoTagLayered's imageTag has no string context" false "$(inf exampleNoTagContext)"
# derivation attributes, as nixpkgs sets them
expect "stream derivation: imageName" layered-image "$(inf streamAttrs.imageName)"
expect "stream derivation: conf attribute is the conf" true "$(inf streamAttrs.conf)"
expect "stream derivation: streamScript attribute is the stream script" true "$(inf streamAttrs.streamScript)"
expect "conf derivation: its inputs as attributes" \
  '{"created":"2001-02-03T04:05:06Z","fromImage":null,"gid":0,"gname":"root","imageName":"dated","imageTag":"latest","mtime":"2002-03-04T05:06:07+00:00","uid":0,"uname":"root"}' \
  "$(jq -c .confAttrs <<<"$info")"
expect "conf derivation: fromImage attribute is the base image" true "$(inf confFromImage)"
# buildLayeredImage strips meta and compressor before calling streamLayeredImage
expect "buildLayeredImage: the stream gets no compressor" false "$(inf buildStreamHasCompressor)"
expect "buildLayeredImage: the stream gets no meta" "{}" "$(jq -c .buildStreamMeta <<<"$info")"
expect "buildLayeredImage: the stream gets no meta.description" null "$(inf buildMetaStream)"
expect "buildLayeredImage: meta stays on the archive" "kept on the archive" "$(inf buildMeta)"
# dockerTools.override and dockerTools.examples reach layered-image's functions
expect "dockerTools.override {}: streamLayeredImage is layered-image's" stream-x "$(inf overriddenHasStreamLayeredImage)"
expect "dockerTools.override {}: examples are layered-image's" "$(inf examples.nginx)" "$(inf overriddenExamplesNginx)"
# cross: the stand-in's cross set has its own (foreign) shell and binary
crossBuildShell=$(inf crossBuildShell) crossHostShell=$(inf crossHostShell)
crossBuildLI=$(inf crossBuildLayeredImage) crossHostLI=$(inf crossHostLayeredImage)
if [ "$crossBuildShell" != "$crossHostShell" ] && [ "$crossBuildLI" != "$crossHostLI" ]; then
  pass "cross: build and host platforms have their own runtimeShell and layered-image"
else
  fail "cross: distinct build platform" "$crossBuildShell $crossHostShell $crossBuildLI $crossHostLI"
fi
if "$crossHostShell" -c true 2>/dev/null; then fail "cross: the host platform's shell does not run on the build machine"; else pass "cross: the host platform's shell does not run on the build machine"; fi
expect "cross: architecture (GOARCH of the host platform)" arm64 "$(inf crossArchitecture)"

# dockerTools.override's arguments reach layered-image's functions (#18.6)
expect "dockerTools.override { storeDir }: the conf's --store-dir" true "$(inf overrideStoreDir)"
expect "dockerTools.override { pigz }: buildLayeredImage compresses with it" true "$(inf overridePigz)"
# passthru: the user's beats ours, nixpkgs' own beat the user's (#18.7)
expect "passthru: the user's copyTo/copyToRegistry win; nixpkgs' imageTag wins; ours stay" \
  '["mine","mine too","t","mine",true]' "$(jq -c .userPassthruWins <<<"$info")"
expect "32-bit ARM: architecture arm" arm "$(inf armArchitecture)"

# A Darwin build machine making Linux images: evaluation only (#18.1)
for s in x86_64-darwin aarch64-darwin; do
  d=$(nix eval --json "$testflake#darwin.$s" "${testoverrides[@]}" 2>"$tmp/darwin.log") || { fail "darwin ($s): evaluates" "$(tail -5 "$tmp/darwin.log")"; continue; }
  n=$(jq '[.drvPaths[] | select(test("^/nix/store/[a-z0-9]{32}-.*\\.drv$"))] | length' <<<"$d")
  expect "darwin ($s): every derivation instantiates" "$(jq '.drvPaths | length' <<<"$d")" "$n"
  expect "darwin ($s): stream, conf and archive are built on $s" "$s $s $s" "$(jq -r '[.systems.stream, .systems.conf, .systems.archive] | join(" ")' <<<"$d")"
  expect "darwin ($s): build platform is Darwin" true "$(jq -r .buildPlatformIsDarwin <<<"$d")"
  expect "darwin ($s): image architecture is the Linux host's" "$( [ "$s" = x86_64-darwin ] && echo amd64 || echo arm64)" "$(jq -r .architecture <<<"$d")"
  expect "darwin ($s): layered-image's meta.platforms has $s" true "$(jq -r .layeredImageOnDarwin <<<"$d")"
  expect "darwin ($s): the stream runs the build platform's binary" true "$(jq -r .streamCallsBuildBinary <<<"$d")"
done

# --- 3. build the images ----------------------------------------------------
images=(layered precomputed another bulk parent layeredBulk envChild noTagStream noTagBuild unstableDate fakeRoot
  noStore storeSymlink nonRoot pipeline pipelineFile compressedNone compressedGz compressedZstd ociLayout ociZstd ociPush
  depsLayer appLayer withLayers nixAsUser permsLayer withPermsLayer
  architecture prefixed nixDb nixShell dated withPath streamScript gnuTarLayered gnuTarFakeRoot
  fakechrootChown buildEnvContents overridden overriddenTools variant armDefaultVariant oddTag oddTagOci sandboxProbe
  crossStream crossBuild crossOci crossLayer crossWithLayer crossFakechroot crossNixDb crossNixShell crossBuildNixShell
  crossStreamScript crossCopyTo)
mapfile -t examples < <(jq -r '.examples | keys[]' <<<"$info")
declare -A img
echo "== nix build ${#images[@]} images" >&2
# the sandbox probe is built anew each run
nix-store --delete "$(inf outPaths.sandboxProbe)" >/dev/null 2>&1 || true
attrs=("$testflake#sbomSpdx.sbom" "$testflake#sbomCyclonedx.sbom" "$testflake#precomputed.copyTo" "$testflake#bulk.copyTo" "$testflake#withLayers.copyTo" "$testflake#pushable.copyToRegistry"
  "$testflake#ociPush.copyToRegistry" "$testflake#ociPush.copyTo" "$testflake#pushable.copyToDockerDaemon" "$testflake#pushable.copyToPodman" "$testflake#multi" "$testflake#oddTag.copyToDockerDaemon"); for i in "${images[@]}"; do attrs+=("$testflake#$i"); done
for e in "${examples[@]}"; do attrs+=("$testflake#examples.$e"); done
if ! nix build --no-link "${attrs[@]}" "${testoverrides[@]}" --keep-going 2>"$tmp/build.log"; then
  quiet <"$tmp/build.log" | tail -40 >&2
fi
valid() { nix-store --check-validity "$1" 2>/dev/null; }
for i in "${images[@]}"; do
  p=$(inf "outPaths.$i")
  if valid "$p"; then pass "build $i"; else fail "build $i" "not built (see the log above)"; fi
done
for i in "${images[@]}"; do
  p=$(inf "outPaths.$i")
  if valid "$p"; then img[$i]=$p; fi
done
declare -A ex
for e in "${examples[@]}"; do
  p=$(jq -r --arg e "$e" '.examples[$e]' <<<"$info")
  if valid "$p"; then ex[$e]=$p; pass "build dockerTools.examples.$e (with layered-image)"; else fail "build dockerTools.examples.$e" "not built (see the log above)"; fi
done

# cross: every script that runs on the build machine is the build platform's
for i in crossStream crossStreamScript crossNixShell; do
  f=${img[$i]:-}
  [ -n "$f" ] || { fail "cross: $i's script" "not built"; continue; }
  expect "cross: $i runs with the build platform's shell" "#!$crossBuildShell" "$(head -1 "$f")"
done
if [ -n "${img[crossCopyTo]:-}" ]; then
  expect "cross: copyTo runs with the build platform's shell" "#!$crossBuildShell" "$(head -1 "${img[crossCopyTo]}/bin/copy-to")"
fi
for i in crossStream crossStreamScript crossNixShell crossCopyTo; do
  [ -n "${img[$i]:-}" ] || continue
  if grep -rqF "$crossBuildLI/bin/layered-image" "${img[$i]}" && ! grep -rqF "$crossHostLI" "${img[$i]}"; then
    pass "cross: $i calls the build platform's layered-image"
  else
    fail "cross: $i calls the build platform's layered-image" "$(grep -rh layered-image "${img[$i]}" | head -2)"
  fi
done

# Build-time error for a base image that uses up maxLayers, as nixpkgs'
if out=$(nix build --no-link "$testflake#tooFewLayers" "${testoverrides[@]}" 2>&1); then
  fail "fromImage layers + customisation >= maxLayers fails the build" "it built"
else
  case $out in
    *"usedLayers 3 layers to store 'fromImage' and 'extraCommands', but only maxLayers=3 were allowed"*) pass "fromImage layers + customisation >= maxLayers fails with nixpkgs' message" ;;
    *) fail "fromImage layers + customisation >= maxLayers message" "$(quiet <<<"$out" | tail -5)" ;;
  esac
fi

# The customisation layer is byte-identical to nixpkgs' GNU tar recipe.
for i in layered fakeRoot; do
  r=gnuTar${i^}
  if [ -n "${img[$i]:-}" ] && [ -n "${img[$r]:-}" ]; then
    conf=$(sed -n 's/^exec .* stream \([^ ]*\) .*/\1/p' "${img[$i]}")
    ours=$(jq -r .customisation_layer "$conf")
    if cmp -s "$ours/layer.tar" "${img[$r]}/layer.tar"; then
      pass "$i: customisation layer.tar == GNU tar's (nixpkgs recipe)"
    else
      fail "$i: customisation layer.tar == GNU tar's (nixpkgs recipe)" "$(cmp "$ours/layer.tar" "${img[$r]}/layer.tar" 2>&1 | head -1)"
    fi
    expect "$i: customisation layer checksum" "$(cat "${img[$r]}/checksum")" "$(tr -d '[:space:]' <"$ours/checksum")"
  else
    fail "$i: customisation layer vs GNU tar" "not built"
  fi
done

# --- 4. docker ------------------------------------------------------------
if [ -n "${LI_NIX_DOCKER_HOST:-}" ]; then
  DOCKER_HOST=$LI_NIX_DOCKER_HOST
else
  eval "$("$repo/tests/support/dockerd.sh" start "$docker_dir")"
  docker_started=1
fi
export DOCKER_HOST

# load IMAGE-ATTR: streams or loads the built image; prints the loaded name
load() {
  local p=${img[$1]:-}
  [ -n "$p" ] || return 1
  if [ -x "$p" ] && [ ! -d "$p" ] && head -c2 "$p" | grep -q '#!'; then
    "$p" 2>>"$tmp/stream.log" | docker load
  elif [ "${p%.zst}" != "$p" ]; then
    # dockerd 20.10 (Debian 12) cannot load zstd archives itself (docker >= 23 can)
    zstd -dc "$p" | docker load
  else
    docker load -i "$p"
  fi | sed -n 's/^Loaded image: //p' | tail -1
}
run() { docker run --rm --network none "$@"; }
layers() { docker inspect --format '{{len .RootFS.Layers}}' "$1"; }
declare -A name
for i in "${images[@]}"; do
  [ -n "${img[$i]:-}" ] || continue
  case $i in gnuTar* | streamScript | oci* | depsLayer | appLayer | permsLayer | crossLayer | crossStreamScript | crossCopyTo | crossOci | oddTag* | sandboxProbe) continue ;; esac
  if n=$(load "$i") && [ -n "$n" ]; then name[$i]=$n; pass "docker load $i ($n)"; else fail "docker load $i"; fi
done
has() { [ -n "${name[$1]:-}" ] || { fail "$2" "image $1 not loaded"; return 1; }; }

# layered-image: runs, extraCommands, /nix modes for a non-root user
if has layered "layered image"; then
  expect "layered: Cmd output" "Hello from layered-image" "$(run "${name[layered]}" 2>&1)"
  expect "layered: extraCommands file" "(extraCommand)" "$(run "${name[layered]}" cat /extraCommands 2>&1)"
  expect "layered: /nix and /nix/store are 755 for a non-root user" "755 755" \
    "$(run -u 999 "${name[layered]}" sh -c 'echo $(stat -c %a /nix) $(stat -c %a /nix/store)' 2>&1)"
  expect "layered: repo tag" "layered-image:latest" "${name[layered]}"
  # -t overrides the tag, as nixpkgs' stream script
  n=$("${img[layered]}" -t custom/renamed:v1 2>>"$tmp/stream.log" | docker load | sed -n 's/^Loaded image: //p') || true
  expect "stream -t NAME:TAG" "custom/renamed:v1" "$n"
  expect "layered: default maxLayers, one layer per store path (3) + customisation" 4 "$(layers "${name[layered]}")"
  # passthru.streamScript CONF gives the same stream
  conf=$(sed -n 's/^exec .* stream \([^ ]*\) .*/\1/p' "${img[layered]}")
  if [ -n "${img[streamScript]:-}" ]; then
    a=$("${img[layered]}" 2>>"$tmp/stream.log" | sha256sum) || true
    b=$("${img[streamScript]}" "$conf" 2>>"$tmp/stream.log" | sha256sum) || true
    expect "passthru.streamScript CONF == the image's stream" "$a" "$b"
  fi
  # the stream is deterministic
  a=$("${img[layered]}" 2>>"$tmp/stream.log" | sha256sum) || true
  b=$("${img[layered]}" 2>>"$tmp/stream.log" | sha256sum) || true
  expect "stream output is reproducible" "$a" "$b"
fi

# another-layered-image: closure from config only; shares layers with layered-image
if has another "another image" && has layered "shared layers"; then
  expect "another: Cmd from config's string context" "Hello from layered-image" "$(run "${name[another]}" 2>&1)"
  shared=$(comm -12 <(docker inspect --format '{{range .RootFS.Layers}}{{println .}}{{end}}' "${name[layered]}" | sort -u) \
    <(docker inspect --format '{{range .RootFS.Layers}}{{println .}}{{end}}' "${name[another]}" | sort -u) | grep -c sha256 || true)
  if [ "$shared" -ge 1 ]; then pass "layers are shared between images ($shared)"; else fail "layers are shared between images" "none shared"; fi
fi

# maxLayers = 2: one bulk layer + customisation layer, nothing lost (#78744)
if has bulk "bulk layer"; then
  expect "bulk-layer: layer count with maxLayers = 2" 2 "$(layers "${name[bulk]}")"
  check "bulk-layer: ls /bin/hello" run "${name[bulk]}" ls /bin/hello
  expect "bulk-layer: hello runs" "Hello from layered-image" "$(run "${name[bulk]}" hello 2>&1)"
fi

# fromImage on a layered image: base layers count against maxLayers
if has layeredBulk "layered bulk layer"; then
  expect "layered-bulk-layer: 4 layers with fromImage (2 layers) and maxLayers = 4" 4 "$(layers "${name[layeredBulk]}")"
  expect "layered-bulk-layer: runs" "Hello from layered-image" "$(run "${name[layeredBulk]}" hello 2>&1)"
fi

# Env merge with the base image
if has envChild "env merge"; then
  env_out=$(run "${name[envChild]}" 2>&1) || true
  for v in FROM_PARENT=true FROM_CHILD=true LAST_LAYER=child; do
    if grep -qx "$v" <<<"$env_out"; then pass "env-child: env has $v"; else fail "env-child: env has $v" "$env_out"; fi
  done
  expect "env-child: exactly one LAST_LAYER entry in the config" 1 \
    "$(docker inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "${name[envChild]}" | grep -c '^LAST_LAYER=')"
  expect "env-child: base Cmd not inherited, own Cmd kept" "[env]" "$(docker inspect --format '{{.Config.Cmd}}' "${name[envChild]}")"
fi

# tag = null: the tag is the conf's hash, exposed as passthru.imageTag
if has noTagStream "tag = null (stream)"; then
  expect "tag = null (stream): loaded tag == passthru.imageTag" "no-tag-stream:$(inf noTagStreamTag)" "${name[noTagStream]}"
fi
if has noTagBuild "tag = null (build)"; then
  expect "tag = null (buildLayeredImage): loaded tag == passthru.imageTag" "no-tag-build:$(inf noTagBuildTag)" "${name[noTagBuild]}"
fi

# created = "now"
if has unstableDate "created = now"; then
  c=$(docker inspect --format '{{.Created}}' "${name[unstableDate]}") || true
  case $c in 1970-01-01T00:00:01*) fail "created = now: .Created is not the epoch default" "$c" ;; *) pass "created = now: .Created is $c" ;; esac
  d=$(docker inspect --format '{{.Created}}' "${name[layered]:-missing}" 2>/dev/null || true)
  expect "default created: .Created" "1970-01-01T00:00:01Z" "$d"
fi

# fakeRootCommands: chown survives, store paths referenced by the layer are in the image
if has fakeRoot "fakeRootCommands"; then
  expect "fakeRootCommands: stat -c %u /home/alice" 1000 "$(run "${name[fakeRoot]}" stat -c %u /home/alice 2>&1)"
  expect "fakeRootCommands: /hello/bin/fakeRoot-hello runs" "fakeRoot-hello" "$(run "${name[fakeRoot]}" /hello/bin/fakeRoot-hello 2>&1)"
fi

# precomputeLayerDigests: digests in the conf, the same image, streamed in one pass
# sbom = "spdx" | "cyclonedx": the SBOM built in the sandbox, valid by its
# official validator, every store path of the conf in it; the image's
# derivation (and so every byte) the same as without it.
expect "sbom: the image is the one without sbom" "$(inf outPaths.layered)" "$(inf outPaths.sbomSpdx)"
expect "sbom: cyclonedx image is the one without sbom" "$(inf outPaths.layered)" "$(inf outPaths.sbomCyclonedx)"
expect "sbom: no passthru.sbom without sbom" true "$(inf layeredHasNoSbom)"
spdx=$(inf sbomSpdxDoc) cdx=$(inf sbomCyclonedxDoc)
if valid "$spdx"; then
  check "sbom spdx: pyspdxtools accepts it" pyspdxtools -i "$spdx"
  expect "sbom spdx: every store path of the conf listed" "$(jq -r '.store_layers | flatten | sort | .[]' "$(inf layeredConf)")" \
    "$(jq -r '[.packages[] | .packageFileName // empty] | sort | .[]' "$spdx")"
  expect "sbom spdx: the direct contents' meta" "hello 2.12.1 GPL-3.0-or-later https://example.org/hello" \
    "$(jq -r --arg p "$(inf hello)" '.packages[] | select(.packageFileName == $p) | "\(.name) \(.versionInfo) \(.licenseDeclared) \(.homepage)"' "$spdx")"
else
  fail "sbom spdx: built" "not built (see the log above)"
fi
if valid "$cdx"; then
  check "sbom cyclonedx: CycloneDX 1.6 strict schema accepts it" python3 -c '
import sys
from cyclonedx.validation.json import JsonStrictValidator
from cyclonedx.schema import SchemaVersion
e = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())
sys.exit(str(e.data.message) if e is not None else 0)' "$cdx"
  expect "sbom cyclonedx: every store path of the conf listed" "$(jq -r '.store_layers | flatten | sort | .[]' "$(inf layeredConf)")" \
    "$(jq -r '[.components[] | .["bom-ref"] | select(startswith("/"))] | sort | .[]' "$cdx")"
else
  fail "sbom cyclonedx: built" "not built (see the log above)"
fi

if has precomputed "precomputed digests"; then
  expect "precomputeLayerDigests: conf carries one digest per store layer" \
    "$(jq '.store_layers | length' "$(inf precomputedConf)")" "$(jq '.store_layer_digests | length' "$(inf precomputedConf)")"
  expect "precomputeLayerDigests: same layers as without" \
    "$(docker inspect --format '{{.RootFS.Layers}}' "${name[layered]:-missing}")" "$(docker inspect --format '{{.RootFS.Layers}}' "${name[precomputed]}")"
  expect "precomputeLayerDigests: runs" "Hello from layered-image" "$(run "${name[precomputed]}" 2>&1)"
fi

# layered-image's own: buildLayeredImage { format = "oci"; } and passthru.copyTo
for i in ociLayout ociZstd; do
  [ -n "${img[$i]:-}" ] || { fail "$i: OCI layout" "not built"; continue; }
  check "$i: layered-image verify" "$binary" verify "oci:${img[$i]}:oci"
  check "$i: skopeo inspect" skopeo inspect "oci:${img[$i]}:oci"
done
if [ -n "${img[ociZstd]:-}" ]; then
  m=$(jq -r '.manifests[0].digest | sub("sha256:"; "")' "${img[ociZstd]}/index.json")
  expect "ociZstd: zstd layers" "application/vnd.oci.image.layer.v1.tar+zstd" \
    "$(jq -r '[.layers[].mediaType] | unique | join(",")' "${img[ociZstd]}/blobs/sha256/$m")"
fi
if [ -n "${img[ociLayout]:-}" ] && skopeo copy "oci:${img[ociLayout]}:oci" "docker-archive:$tmp/oci.tar:layered-image-oci:oci" >/dev/null 2>&1 \
  && docker load -i "$tmp/oci.tar" >/dev/null; then
  expect "ociLayout: runs in docker after skopeo copy" "Hello from layered-image" "$(run layered-image-oci:oci 2>&1)"
else
  fail "ociLayout: loads in docker after skopeo copy"
fi
# copy_to ATTR ARGS...: runs the one program of a copy script's bin/
copy_to() { local b; b=$(echo "$(inf "$1")"/bin/*); "$b" "${@:2}"; }
if out=$(nix run "$testflake#precomputed.copyTo" "${testoverrides[@]}" -- "oci:$tmp/copied:first" 2>&1); then
  pass "nix run .#image.copyTo -- oci:DIR:REF"
  check "copyTo: layered-image verify" "$binary" verify "oci:$tmp/copied:first"
  # precomputed digests: the unchanged image is copied again without reading a layer
  out=$(copy_to precomputedCopyTo "oci:$tmp/copied:second" 2>&1) || true
  case $out in *"(0 written, "*) pass "copyTo with precomputed digests: no layer read again" ;; *) fail "copyTo again" "$(tail -3 <<<"$out")" ;; esac
else
  fail "nix run .#image.copyTo" "$(quiet <<<"$out" | tail -5)"
fi
# passthru.explain on every image (dockerTools users get it unchanged):
# the text on stdout, the HTML page in ./result-explain or the path given
mkdir -p "$tmp/explain"
if out=$(cd "$tmp/explain" && nix run "$testflake#precomputed.explain" "${testoverrides[@]}" 2>&1); then
  case $out in *"image "*"layer 0 "*) pass "nix run .#image.explain: the text" ;; *) fail "nix run .#image.explain: the text" "$(quiet <<<"$out" | tail -3)" ;; esac
  if grep -q "layered-image treemap" "$tmp/explain/result-explain" 2>/dev/null; then
    pass "nix run .#image.explain: the page in ./result-explain"
  else
    fail "nix run .#image.explain: no page in ./result-explain"
  fi
else
  fail "nix run .#image.explain" "$(quiet <<<"$out" | tail -5)"
fi
if out=$(nix run "$testflake#bulk.explain" "${testoverrides[@]}" -- "$tmp/explain/bulk.html" --json 2>&1) \
  && grep -q "layered-image treemap" "$tmp/explain/bulk.html"; then
  case $out in *auto-layer*) pass "buildLayeredImage's passthru.explain -- FILE: the page, each path's rule" ;; *) fail "bulk.explain: no layering rule" "$(quiet <<<"$out" | tail -c 300)" ;; esac
else
  fail "nix run .#bulk.explain -- FILE" "$(quiet <<<"$out" | tail -5)"
fi
check "copyTo of buildLayeredImage: oci-archive" copy_to buildCopyTo "oci-archive:$tmp/bulk-oci.tar:bulk" --compress zstd
check "copyTo of buildLayeredImage: verify" "$binary" verify "oci-archive:$tmp/bulk-oci.tar:bulk"

# layered-image's own: explicit layers (buildLayer), nested, digests from their own derivations
if has withLayers "explicit layers"; then
  expect "withLayers: runs the app of the explicit layer" "layer-hello" "$(run "${name[withLayers]}" 2>&1)"
  c=$(inf withLayersConf)
  expect "withLayers: nested layer first, its paths" "$(jq -c .paths "${img[depsLayer]}")" "$(jq -c '.store_layers[0]' "$c")"
  expect "withLayers: explicit layer second, its paths" "$(jq -c .paths "${img[appLayer]}")" "$(jq -c '.store_layers[1]' "$c")"
  for l in depsLayer appLayer; do
    expect "withLayers: $l's paths are in no other layer" 1 \
      "$(jq --arg p "$(jq -r '.paths[0]' "${img[$l]}")" '[.store_layers[][] | select(. == $p)] | length' "$c")"
  done
  expect "withLayers: the layers' own digests are the conf's" \
    "$(jq -c .digest "${img[depsLayer]}") $(jq -c .digest "${img[appLayer]}")" \
    "$(jq -c '.store_layer_digests[0]' "$c") $(jq -c '.store_layer_digests[1]' "$c")"
  expect "withLayers: diff_ids in docker are the layer derivations' digests" \
    "sha256:$(jq -r .digest.sha256 "${img[depsLayer]}") sha256:$(jq -r .digest.sha256 "${img[appLayer]}")" \
    "$(docker inspect --format '{{index .RootFS.Layers 0}} {{index .RootFS.Layers 1}}' "${name[withLayers]}")"
  check "withLayers: copyTo" copy_to withLayersCopyTo "oci:$tmp/layers:one"
  check "withLayers: verify" "$binary" verify "oci:$tmp/layers:one"
  check "withLayers: copyTo docker-archive" copy_to withLayersCopyTo "docker-archive:$tmp/layers.tar:with-layers:copied"
  check "withLayers: docker-archive verify" "$binary" verify "$tmp/layers.tar"
fi

# layered-image's own: copyToRegistry, copyToDockerDaemon, copyToPodman, copyIndex
mkdir -p "$tmp/registry"
printf 'version: 0.1\nstorage:\n  filesystem: {rootdirectory: %s}\nhttp:\n  addr: 127.0.0.1:5111\n' "$tmp/registry/data" >"$tmp/registry/config.yml"
docker-registry serve "$tmp/registry/config.yml" >"$tmp/registry/log" 2>&1 &
regpid=$!
for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/5111) 2>/dev/null && break; sleep 0.2; done
uploads() { grep -c '"PUT /v2/li/pushable/blobs/uploads/' "$tmp/registry/log" || true; }
check "copyToRegistry: pushes to docker://NAME:TAG" copy_to pushableRegistry --dest-tls-verify=false
check "copyToRegistry: skopeo reads it" skopeo inspect --tls-verify=false docker://127.0.0.1:5111/li/pushable:v1
before=$(uploads)
out=$(copy_to pushableRegistry --dest-tls-verify=false 2>&1) || true
case $out in *"(0 written, "*) pass "copyToRegistry again: no layer read (digests from their derivation)" ;; *) fail "copyToRegistry again" "$(tail -3 <<<"$out")" ;; esac
expect "copyToRegistry again: no blob uploaded" "$before" "$(uploads)"
expect "copyToRegistry: extraTags name the same manifest" \
  "$(skopeo inspect --tls-verify=false --format '{{.Digest}}' docker://127.0.0.1:5111/li/pushable:v1)" \
  "$(skopeo inspect --tls-verify=false --format '{{.Digest}}' docker://127.0.0.1:5111/li/pushable:v1.0)"
# format = "oci": the layout's blobs go up as they are, under every tag
if [ -n "${img[ociPush]:-}" ]; then
  expect "copyToRegistry of format = oci: the script copies the layout" yes \
    "$(grep -q -- "oci:${img[ociPush]}:" "$(inf ociPushRegistry)/bin/copy-to-registry" && echo yes)"
  check "copyToRegistry of format = oci: pushes" copy_to ociPushRegistry --dest-tls-verify=false
  layoutDigest=$(jq -r '.manifests[0].digest' "${img[ociPush]}/index.json")
  for t in v1 v1.0 stable; do
    expect "copyToRegistry of format = oci: :$t is the layout's manifest" "$layoutDigest" \
      "$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://127.0.0.1:5111/li/oci-push:$t")"
  done
  check "copyToRegistry of format = oci: pulled back" skopeo copy --src-tls-verify=false docker://127.0.0.1:5111/li/oci-push:stable "oci:$tmp/oci-push:x"
  check "copyToRegistry of format = oci: verify" "$binary" verify "oci:$tmp/oci-push:x"
  check "copyTo of format = oci: docker-archive from the conf" copy_to ociPushCopyTo "docker-archive:$tmp/oci-push.tar:oci-push:v1"
  check "copyTo of format = oci: docker-archive verify" "$binary" verify "$tmp/oci-push.tar"
fi
if copy_to pushableDaemon >/dev/null 2>&1; then
  expect "copyToDockerDaemon: runs" "Hello from layered-image" "$(run 127.0.0.1:5111/li/pushable:v1 2>&1)"
else
  fail "copyToDockerDaemon" "$(copy_to pushableDaemon 2>&1 | tail -3)"
fi
# podman's service (podman 5) does not run inside run-trixie.sh's chroot:
# copyToPodman is run by the host's harness; the chroot's checks its script.
if [ -z "${LI_NIX_DOCKER_HOST:-}" ]; then
  podman --root "$tmp/podman-root" --runroot "$tmp/podman-run" --storage-driver vfs --tmpdir "$tmp/podman-tmp" \
    system service --time=0 "unix://$tmp/podman.sock" >/dev/null 2>&1 &
  podpid=$!
  for _ in $(seq 1 50); do [ -S "$tmp/podman.sock" ] && break; sleep 0.2; done
  pod() { podman --root "$tmp/podman-root" --runroot "$tmp/podman-run" --storage-driver vfs "$@"; }
  check "copyToPodman (CONTAINER_HOST)" env CONTAINER_HOST="unix://$tmp/podman.sock" "$(inf pushablePodman)/bin/copy-to-podman"
  expect "copyToPodman: podman has the image" "127.0.0.1:5111/li/pushable:v1" \
    "$(pod images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | head -1)"
  # without CONTAINER_HOST: the user's socket under XDG_RUNTIME_DIR
  pod rmi -f 127.0.0.1:5111/li/pushable:v1 >/dev/null 2>&1 || true
  mkdir -p "$tmp/xdg/podman" && ln -sf "$tmp/podman.sock" "$tmp/xdg/podman/podman.sock"
  check "copyToPodman (\$XDG_RUNTIME_DIR/podman/podman.sock)" env -u CONTAINER_HOST XDG_RUNTIME_DIR="$tmp/xdg" "$(inf pushablePodman)/bin/copy-to-podman"
  expect "copyToPodman: podman has the image again" "127.0.0.1:5111/li/pushable:v1" \
    "$(pod images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | head -1)"
fi
# the socket is found by the binary (unit-tested there), not by shell in the script
expect "copyToPodman: the script leaves finding podman to the binary" yes \
  "$(grep -q -- '--engine podman' "$(inf pushablePodman)/bin/copy-to-podman" && ! grep -q 'podman.sock' "$(inf pushablePodman)/bin/copy-to-podman" && echo yes)"
check "copyIndex: pushes an index of two platforms" "$(inf multiCopy)/bin/copy-index" docker://127.0.0.1:5111/li/multi:v1 --dest-tls-verify=false
expect "copyIndex: platforms" "amd64 arm64" \
  "$(skopeo inspect --raw --tls-verify=false docker://127.0.0.1:5111/li/multi:v1 | jq -r '[.manifests[].platform.architecture] | join(" ")')"
# no DEST: the first image's NAME:TAG (the binary's --default-dest)
check "copyIndex: without DEST, to the first image's name" "$(inf multiCopy)/bin/copy-index" --dest-tls-verify=false
expect "copyIndex: without DEST: an index at docker://127.0.0.1:5111/li/pushable:v1" "amd64 arm64" \
  "$(skopeo inspect --raw --tls-verify=false docker://127.0.0.1:5111/li/pushable:v1 | jq -r '[.manifests[].platform.architecture] | join(" ")')"

# includeStorePaths = false: no store paths at all; runs with the host store mounted
if has noStore "includeStorePaths = false"; then
  expect "includeStorePaths = false: only the customisation layer" 1 "$(layers "${name[noStore]}")"
  if run "${name[noStore]}" >/dev/null 2>&1; then fail "includeStorePaths = false: fails without /nix/store"; else pass "includeStorePaths = false: fails without /nix/store"; fi
  cid=$(docker create "${name[noStore]}") || true
  expect "includeStorePaths = false: ZERO nix/store paths in the filesystem" 0 "$(docker export "$cid" | tar t | grep -c 'nix/store/' || true)"
  [ -z "$cid" ] || docker rm "$cid" >/dev/null
  expect "includeStorePaths = false: runs with --volume /nix/store" "Hello from layered-image" \
    "$(run --volume "$host_store:/nix/store:ro" "${name[noStore]}" 2>&1)"
fi

# a store path that is a symlink stays a symlink (#107021)
if has storeSymlink "store symlink"; then
  check "store path symlink is a symlink in the image" run "${name[storeSymlink]}" test -L "$(inf symlink)"
  expect "store path symlink: content via the link" "test" "$(run "${name[storeSymlink]}" cat /file 2>&1)"
fi

# uid/gid/uname/gname: store layers owned by 1000:1000
if has nonRoot "non-root store"; then
  expect "uid/gid = 1000: busybox owned by 1000:1000 (Cmd as User 1000:1000)" "1000:1000" "$(run "${name[nonRoot]}" 2>&1)"
  expect "uid/gid = 1000: /nix/store owner and mode" "1000:1000 755" "$(run "${name[nonRoot]}" stat -c '%u:%g %a' /nix/store 2>&1)"
  p=${img[nonRoot]}
  unames=$("$p" 2>>"$tmp/stream.log" | tar -xO --wildcards '*/layer.tar' 2>/dev/null | tar -tv 2>/dev/null | awk '{print $2}' | sort -u | tr '\n' ' ' || true)
  case $unames in *user/user*) pass "uid/gid = 1000: tar owner names user/user ($unames)" ;; *) fail "uname/gname in store layers" "$unames" ;; esac
fi

# layeringPipeline (Nix list and JSON file)
if has pipeline "layeringPipeline"; then
  expect "layeringPipeline (list): busybox layer + 2 popularity layers + customisation" 4 "$(layers "${name[pipeline]}")"
  expect "layeringPipeline (list): runs" "Hello from layered-image" "$(run "${name[pipeline]}" hello 2>&1)"
fi
if has pipelineFile "layeringPipeline file"; then
  expect "layeringPipeline (file, limit_layers 1): 1 store layer + customisation" 2 "$(layers "${name[pipelineFile]}")"
  expect "layeringPipeline (file): runs" "Hello from layered-image" "$(run "${name[pipelineFile]}" hello 2>&1)"
fi

# buildLayeredImage compressors
for c in None Gz Zstd; do
  i=compressed$c
  has "$i" "compressor $c" || continue
  magic=$(head -c 4 "${img[$i]}" | od -An -tx1 | tr -d ' \n') || true
  case $c in
    None) case $(tail -c +258 "${img[$i]}" | head -c 5) in ustar) pass "compressor none: plain tar" ;; *) fail "compressor none: plain tar" ;; esac ;;
    Gz) case $magic in 1f8b*) pass "compressor gz: gzip magic" ;; *) fail "compressor gz: gzip magic" "$magic" ;; esac ;;
    Zstd) case $magic in 28b52ffd) pass "compressor zstd: zstd magic" ;; *) fail "compressor zstd: zstd magic" "$magic" ;; esac ;;
  esac
  lc=$(tr '[:upper:]' '[:lower:]' <<<"$c")
  expect "compressor $lc: runs" "compressor $lc" "$(run "${name[$i]}" 2>&1)"
done

if has architecture "architecture"; then
  expect "architecture = arm64" arm64 "$(docker inspect --format '{{.Architecture}}' "${name[architecture]}")"
fi
if has prefixed "registry prefix"; then
  expect "name with a registry prefix" "registry-1.docker.io/layered-image:latest" "${name[prefixed]}"
fi

# includeNixDB (buildLayeredImageWithNixDb)
if has nixDb "includeNixDB"; then
  check "includeNixDB: db.sqlite present" run "${name[nixDb]}" test -s /nix/var/nix/db/db.sqlite
  cid=$(docker create "${name[nixDb]}" /bin/true) || true
  if [ -n "$cid" ] && docker cp "$cid:/nix/var/nix/db/db.sqlite" "$tmp/db.sqlite" >/dev/null 2>&1; then
    expect "includeNixDB: registrationTime reset to SOURCE_DATE_EPOCH" 315532800 \
      "$(python3 -c 'import sqlite3,sys; print(" ".join(str(r[0]) for r in sqlite3.connect(sys.argv[1]).execute("select distinct registrationTime from ValidPaths")))' "$tmp/db.sqlite" 2>&1)"
    expect "includeNixDB: hello registered" 1 \
      "$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from ValidPaths where path = ?", (sys.argv[2],)).fetchone()[0])' "$tmp/db.sqlite" "$(inf hello)" 2>&1)"
  else
    fail "includeNixDB: copy db.sqlite out of the image"
  fi
  [ -z "$cid" ] || docker rm "$cid" >/dev/null
  expect "includeNixDB: gcroot for hello" "$(inf hello)" "$(run "${name[nixDb]}" readlink "/nix/var/nix/gcroots/docker/$(basename "$(inf hello)")" 2>&1)"
fi

# perms, users, includeNixDB (docs/perms.md): nix works as the user
if has nixAsUser "non-root Nix image"; then
  n=${name[nixAsUser]} h=$(inf hello)
  expect "nixAsUser: config.User app, resolved through the users layer" "1000 1000 app /home/app" \
    "$(run "$n" sh -c 'echo $(id -u) $(id -g) $(id -un) $HOME' 2>&1)"
  expect "nixAsUser: /etc/passwd is fakeNss' accounts and the user's" "root nobody app" \
    "$(run "$n" sh -c "cut -d: -f1 /etc/passwd | tr '\\n' ' ' | sed 's/ \$//'" 2>&1)"
  check "nixAsUser: nix-store --verify --check-contents as the user" run "$n" nix-store --verify --check-contents
  # the control: the DB is the user's, so another uid cannot take its lock (as app could not a root-owned one)
  if run --user 1001:1001 -e USER=other "$n" nix-store --verify >/dev/null 2>&1; then fail "nixAsUser: another uid cannot use the user's DB" "it could"; else pass "nixAsUser: another uid cannot use the user's DB"; fi
  expect "nixAsUser: nix-store -q --references as the user" "$(nix-store -q --references "$h" | sort)" \
    "$(run "$n" nix-store -q --references "$h" 2>/dev/null | sort)"
  expect "nixAsUser: the user writes its home and /tmp, not a store path" "home tmp store-read-only" \
    "$(run "$n" sh -c "touch \$HOME/f && printf home; touch /tmp/f && printf ' tmp'; if touch $h/f 2>/dev/null; then printf ' store-writable'; else printf ' store-read-only'; fi" 2>&1)"
  expect "nixAsUser: the Nix DB and /nix/var are the user's; /nix, /nix/store 755" \
    "1000:1000 1000:1000 1000:1000 1000:1000 755 755 1777" \
    "$(run "$n" stat -c '%u:%g' /nix/var/nix/db/db.sqlite /nix/var/nix/db /nix/var /nix 2>&1 | tr '\n' ' ')$(run "$n" stat -c '%a' /nix /nix/store /tmp 2>&1 | tr '\n' ' ' | sed 's/ $//')"
  expect "nixAsUser: perms (hello's bin 0700)" "700 1000 1000" "$(run "$n" stat -c '%a %u %g' "$h/bin" 2>&1)"
  expect "nixAsUser: hello runs for its owner" "Hello from layered-image" "$(run "$n" hello 2>&1)"
  out=$("$binary" verify "${img[nixAsUser]}" 2>&1) || true
  case $out in *warning*) fail "nixAsUser: verify, no directory shadowed" "$out" ;; verified*) pass "nixAsUser: verify, no directory shadowed" ;; *) fail "nixAsUser: verify" "$out" ;; esac
fi
# buildLayer { perms }: the layer keeps its digests in the image
if has withPermsLayer "buildLayer with perms"; then
  c=$(inf withPermsLayerConf)
  expect "withPermsLayer: the layer's rules are the conf's" "$(jq -c .perms "${img[permsLayer]}")" "$(jq -c .perms "$c")"
  expect "withPermsLayer: the layer's digest is the conf's" "$(jq -c .digest.sha256 "${img[permsLayer]}")" "$(jq -c '.store_layer_digests[0].sha256' "$c")"
  expect "withPermsLayer: diff_id in docker is the layer derivation's digest" "sha256:$(jq -r .digest.sha256 "${img[permsLayer]}")" \
    "$(docker inspect --format '{{index .RootFS.Layers 0}}' "${name[withPermsLayer]}")"
  p=$(jq -r '.paths[] | select(endswith("-perms-hello"))' "${img[permsLayer]}")
  expect "withPermsLayer: runs; bin is 0700 1000:1000" "perms-hello 700 1000 1000" \
    "$(run "${name[withPermsLayer]}" sh -c "$p/bin/perms-hello; stat -c '%a %u %g' $p/bin" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
fi

# explicit created / mtime, config keys, single contents, bare path contents
if has dated "created/mtime"; then
  expect "created = 2001-02-03T04:05:06Z: .Created" "2001-02-03T04:05:06Z" "$(docker inspect --format '{{.Created}}' "${name[dated]}")"
  expect "mtime = 2002-03-04T05:06:07+00:00: store file mtime" 1015218367 "$(run "${name[dated]}" stat -c %Y "$(inf busybox)/bin/busybox" 2>&1)"
  expect "config WorkingDir" /work "$(docker inspect --format '{{.Config.WorkingDir}}' "${name[dated]}")"
  expect "config Labels" yes "$(docker inspect --format '{{index .Config.Labels "org.example.test"}}' "${name[dated]}")"
  expect "config ExposedPorts" "map[8080/tcp:{}]" "$(docker inspect --format '{{.Config.ExposedPorts}}' "${name[dated]}")"
  check "contents = a single derivation (not a list)" run "${name[dated]}" /bin/true
fi
if has withPath "bare path in contents"; then
  expect "bare path in contents: /hello.txt" "hello from a bare path" "$(run "${name[withPath]}" cat /hello.txt 2>&1)"
fi

# streamNixShellImage: runs as 1000, HOME, drv env, buildDerivation into a writable store
if has nixShell "streamNixShellImage"; then
  out=$(run "${name[nixShell]}" 2>&1 || true)
  if grep -q "uid=1000 home=/build greeting=hi" <<<"$out"; then pass "streamNixShellImage: user, HOME and drv env"; else fail "streamNixShellImage: user, HOME and drv env" "$out"; fi
  if grep -q "built-by-buildDerivation" <<<"$out"; then pass "streamNixShellImage: buildDerivation"; else fail "streamNixShellImage: buildDerivation" "$out"; fi
fi

# enableFakechroot: chown under the fake chroot survives into the image
if has fakechrootChown "enableFakechroot"; then
  expect "enableFakechroot: chown 12345:12345 /data, seen in the container" "12345:12345" "$(run "${name[fakechrootChown]}" stat -c %u:%g /data 2>&1)"
  expect "enableFakechroot: /etc/marker written by absolute path" "written in the fake chroot" "$(run "${name[fakechrootChown]}" cat /etc/marker 2>&1)"
fi
if has buildEnvContents "buildEnv in contents"; then
  expect "buildEnv in contents: hello on the root's PATH" "Hello from layered-image" "$(run "${name[buildEnvContents]}" 2>&1)"
fi
if has overridden "dockerTools.override"; then
  expect "dockerTools.override {}: buildLayeredImage runs" overridden "$(run "${name[overridden]}" 2>&1)"
fi

# cross: images built with the build platform's tools, for the host's architecture
for i in crossStream crossBuild crossNixDb crossBuildNixShell; do
  has "$i" "cross $i" || continue
  expect "cross: $i architecture" arm64 "$(docker inspect --format '{{.Architecture}}' "${name[$i]}")"
done
if has crossStream "cross stream"; then
  expect "cross: streamed image runs" cross "$(run "${name[crossStream]}" 2>/dev/null)"
  conf=$(sed -n 's/^exec .* stream \([^ ]*\) .*/\1/p' "${img[crossStream]}")
  a=$("${img[crossStream]}" 2>>"$tmp/stream.log" | sha256sum) || true
  b=$("${img[crossStreamScript]:-/nonexistent}" "$conf" 2>>"$tmp/stream.log" | sha256sum) || true
  expect "cross: streamScript CONF == the stream" "$a" "$b"
  check "cross: copyTo oci:" "${img[crossCopyTo]:-/nonexistent}/bin/copy-to" "oci:$tmp/cross-oci:latest"
  check "cross: copyTo's layout verifies" "$binary" verify "oci:$tmp/cross-oci:latest"
fi
if has crossBuild "cross buildLayeredImage"; then
  expect "cross: buildLayeredImage (gz) runs" cross "$(run "${name[crossBuild]}" 2>/dev/null)"
fi
[ -n "${img[crossOci]:-}" ] && check "cross: format = oci verifies" "$binary" verify "oci:${img[crossOci]}:latest"
if has crossWithLayer "cross buildLayer"; then
  expect "cross: buildLayer's layer runs" "cross layer" "$(run "${name[crossWithLayer]}" 2>/dev/null)"
fi
if has crossFakechroot "cross enableFakechroot"; then
  expect "cross: enableFakechroot chown" 4242 "$(run "${name[crossFakechroot]}" stat -c %u /data 2>/dev/null)"
fi
if has crossNixShell "cross streamNixShellImage"; then
  expect "cross: streamNixShellImage runs" "cross nix-shell greeting=hi" "$(run "${name[crossNixShell]}" 2>/dev/null | tail -1)"
fi

# the builds ran in Nix's sandbox
if [ -n "${img[sandboxProbe]:-}" ]; then
  expect "sandbox: builds run in /build with HOME=/homeless-shelter and no network" "/build /homeless-shelter no-network" "$(cat "${img[sandboxProbe]}")"
fi

# dockerTools.override { pigz; fakeroot; } (#18.6)
if has overriddenTools "dockerTools.override { pigz; fakeroot; }"; then
  expect "dockerTools.override { fakeroot }: fakeRootCommands ran under it" overridden-fakeroot "$(run "${name[overriddenTools]}" 2>&1)"
  expect "dockerTools.override { pigz }: the archive's gzip comment" overridden-pigz \
    "$(python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); assert d[3] & 0x10 and not d[3] & 0x0c; print(d[10:d.index(b"\0",10)].decode())' "${img[overriddenTools]}" 2>&1)"
fi

# variant (#18.2): given, nixpkgs' default on 32-bit ARM, "" elsewhere
if has variant "variant"; then
  expect "variant = \"v5\": the engine's Architecture/Variant" arm/v5 "$(docker inspect --format '{{.Architecture}}/{{.Variant}}' "${name[variant]}")"
fi
if has armDefaultVariant "32-bit ARM default variant"; then
  expect "32-bit ARM: nixpkgs' defaultVariant v7" arm/v7 "$(docker inspect --format '{{.Architecture}}/{{.Variant}}' "${name[armDefaultVariant]}")"
fi
if [ -n "${img[layered]:-}" ]; then
  conf=$(sed -n 's/^exec .* stream \([^ ]*\) .*/\1/p' "${img[layered]}")
  expect "variant: the conf has nixpkgs' default \"\" off ARM" '""' "$(jq -c .variant "$conf")"
fi

# a tag nixpkgs accepts and Docker refuses (#18.3)
if [ -n "${img[oddTag]:-}" ]; then
  "${img[oddTag]}" 2>"$tmp/odd.err" >"$tmp/odd.tar" || true
  expect "tag 1.0.0+build1: the stream writes it as RepoTags" odd:1.0.0+build1 "$(tar -xOf "$tmp/odd.tar" manifest.json | jq -r '.[0].RepoTags[0]')"
  expect "tag 1.0.0+build1: one warning line" 1 "$(grep -c '^warning: .*invalid image tag "1.0.0+build1".*docker load' "$tmp/odd.err")"
  check "tag 1.0.0+build1: the image verifies" "$binary" verify "$tmp/odd.tar"
  if docker load -i "$tmp/odd.tar" >/dev/null 2>&1; then fail "tag 1.0.0+build1: docker load refuses it" "it loaded"; else pass "tag 1.0.0+build1: docker load refuses it (as the warning says)"; fi
  out=$("$(inf oddTagDaemon)/bin/copy-to-docker-daemon" 2>&1) && fail "copyToDockerDaemon refuses tag 1.0.0+build1" "it copied" \
    || case $out in *'"docker-daemon:odd:1.0.0+build1": invalid image tag "1.0.0+build1"'*"needs a reference Docker accepts"*) pass "copyToDockerDaemon refuses tag 1.0.0+build1, saying why" ;; *) fail "copyToDockerDaemon refusal" "$out" ;; esac
fi
if [ -n "${img[oddTagOci]:-}" ]; then
  check "tag feature/x, format = oci: verifies under its ref name" "$binary" verify "oci:${img[oddTagOci]}:feature/x"
  check "tag feature/x, format = oci: skopeo reads it" skopeo inspect "oci:${img[oddTagOci]}:feature/x"
fi

# --- 5. nixpkgs' examples.nix, through dockerTools.examples ------------------
# Images share names (hello:latest, nix-layered:latest), so each is loaded,
# checked and removed before the next.
exload() {
  local p=${ex[$1]:-}
  [ -n "$p" ] || return 1
  if [ -x "$p" ] && head -c2 "$p" | grep -q '#!'; then "$p" 2>>"$tmp/stream.log" | docker load
  elif [ "${p%.zst}" != "$p" ]; then zstd -dc "$p" | docker load
  else docker load -i "$p"; fi | sed -n 's/^Loaded image: //p' | tail -1
}
extag() { jq -r --arg e "$1" '.exampleTags[$e]' <<<"$info"; }
no_store() { local cid n; cid=$(docker create "$1" none) || return 1; n=$(docker export "$cid" | tar t | grep -c '^nix/store/.' || true); docker rm "$cid" >/dev/null; echo "$n"; }
nix_pkg=$(inf nixLayeredNix)
for e in "${examples[@]}"; do
  [ -n "${ex[$e]:-}" ] || continue
  n=$(exload "$e") || n=
  if [ -z "$n" ]; then fail "examples.$e: docker load"; continue; fi
  pass "examples.$e: docker load ($n)"
  t=$(extag "$e")
  [ "$t" = null ] || expect "examples.$e: loaded tag is passthru.imageTag" "$t" "${n##*:}"
  case $e in
    nginx | nginxStream)
      cid=$(docker run -d --network none "$n") || cid=
      out=
      for _ in $(seq 1 20); do out=$(docker exec "$cid" "$(inf busybox)/bin/wget" -qO- http://127.0.0.1:80/ 2>/dev/null) && break; sleep 0.25; done
      [ -z "$cid" ] || docker rm -f "$cid" >/dev/null
      expect "examples.$e: serves its web root" "<html><body><h1>Hello from NGINX</h1></body></html>" "$out" ;;
    layered-image)
      expect "examples.$e: Cmd" "Hello, world!" "$(run "$n" 2>&1)"
      expect "examples.$e: extraCommands" "(extraCommand)" "$(run "$n" cat /extraCommands 2>&1)" ;;
    layered-on-top-layered) expect "examples.$e: runs on its base's layers" hello "$(run "$n" 2>&1)" ;;
    another-layered-image | prefixedLayeredImage | helloOnRoot | imageViaFakeChroot) expect "examples.$e: runs hello" "Hello, world!" "$(run "$n" 2>&1)" ;;
    two-layered-image | bulk-layer) expect "examples.$e: 2 layers" 2 "$(layers "$n")" ;;
    layered-bulk-layer) expect "examples.$e: 4 layers" 4 "$(layers "$n")" ;;
    no-store-paths)
      expect "examples.$e: /nix/store holds nothing (hello only ran at build time)" 0 "$(no_store "$n")"
      expect "examples.$e: one layer" 1 "$(layers "$n")"
      expect "examples.$e: the copied busybox runs" ok "$(run "$n" echo ok 2>&1)" ;;
    nixLayered | nix-layered | filesInStore)
      # Nix 2.8 needs a user name (newer Nix does not); the image has no passwd
      check "examples.$e: nix-store --verify --check-contents" run -e USER=root "$n" nix-store --verify --check-contents
      [ "$e" = filesInStore ] && expect "examples.$e: Cmd" "some data" "$(run "$n" 2>&1)"
      if [ "$e" != filesInStore ]; then
        expect "examples.$e: nix-store -q --references" "$(nix-store -q --references "$nix_pkg" | sort)" \
          "$(run -e USER=root "$n" nix-store -q --references "$nix_pkg" 2>/dev/null | sort)"
      fi ;;
    unstableDateLayered)
      c=$(docker inspect --format '{{.Created}}' "$n")
      case $c in 1970-01-01T00:00:01*) fail "examples.$e: created = now" "$c" ;; *) pass "examples.$e: created = now ($c)" ;; esac ;;
    bashNoTagLayered)
      case $(head -c 2 "${ex[$e]}" | od -An -tx1 | tr -d ' \n') in 1f8b) pass "examples.$e: gzip" ;; *) fail "examples.$e: gzip" ;; esac
      expect "examples.$e: runs bash" ok "$(run "$n" bash -c 'echo ok' 2>&1)" ;;
    bashLayeredZstdCompressed) case $(head -c 4 "${ex[$e]}" | od -An -tx1 | tr -d ' \n') in 28b52ffd) pass "examples.$e: zstd" ;; *) fail "examples.$e: zstd" ;; esac ;;
    bashLayeredWithUser) expect "examples.$e: runs as the image's user" somebody "$(run -u somebody "$n" whoami 2>&1)" ;;
    layeredStoreSymlink) check "examples.$e: store symlink stays a symlink" run "$n" bash -c "test -L $(inf exampleSymlink)" ;;
    layeredImageWithFakeRootCommands) expect "examples.$e: chown 1000" 1000 "$(run "$n" stat -c %u /home/alice 2>&1)" ;;
    helloOnRootNoStore | helloOnRootNoStoreFakechroot)
      expect "examples.$e: no store paths in the image" 0 "$(no_store "$n")"
      expect "examples.$e: runs with the store mounted" "Hello, world!" "$(run --volume "$host_store:/nix/store:ro" "$n" 2>&1)" ;;
    etc) case $(run "$n" 2>&1) in *"127.0.0.1 localhost"*) pass "examples.etc: /etc/some-config-file via /etc/static (fakechroot)" ;; *) fail "examples.etc: /etc/some-config-file" "$(run "$n" 2>&1 | tail -3)" ;; esac ;;
    layered-image-with-path) expect "examples.$e: local path in contents" "a file from a local path in contents" "$(run "$n" bash -c 'read -r l </dummy.txt; echo "$l"' 2>&1)" ;;
    layered-image-with-architecture) expect "examples.$e: architecture" arm64 "$(docker inspect --format '{{.Architecture}}' "$n")" ;;
    nix-shell-hook) expect "examples.$e: shellHook" "This is the shell hook!" "$(run -t "$n" </dev/null 2>&1 | tr -d '\r' | grep -v '^$' | tail -1)" ;;
    nix-shell-inputs) expect "examples.$e: nativeBuildInputs on PATH" "Hello, world!" "$(run -t "$n" </dev/null 2>&1 | tr -d '\r' | grep -v '^$' | tail -1)" ;;
    nix-shell-pass-as-file) expect "examples.$e: passAsFile" "this is a string" "$(run -t "$n" </dev/null 2>&1 | tr -d '\r' | grep -v '^$' | tail -1)" ;;
    nix-shell-run) expect "examples.$e: run is not interactive" "This shell is not interactive" "$(run "$n" </dev/null 2>&1 | tail -1)" ;;
    nix-shell-command) expect "examples.$e: command runs in the interactive shell" "This shell is interactive" "$(run -t "$n" </dev/null 2>&1 | tr -d '\r' | grep 'This shell' | tail -1)" ;;
    nix-shell-writable-home) expect "examples.$e: writable home" "home directory is writable" "$(run "$n" </dev/null 2>&1 | tail -1)" ;;
    nix-shell-basic) check "examples.$e: the shell starts and exits" run "$n" ;;
  esac
  docker image rm "$n" >/dev/null 2>&1 || true
done

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
