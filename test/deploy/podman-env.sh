#!/usr/bin/env bash
# Prepares podman on this kind of machine (shared/docs/containers.md) and prints the environment to use it:
#   eval "$(test/deploy/podman-env.sh)"   then   podman build … / podman run …
# - containers.conf/storage.conf under $DOCUPOD_CI_CACHE (default ~/.cache/docupod-ci): runc (crun fails on hybrid
#   cgroups here), cgroupfs, explicit ulimits (no CAP_SYS_RESOURCE), init as PID 1, overlay storage.
# - a local stand-in for docker.io/library/node:20-bookworm-slim (no registry can be reached): debootstrap minbase
#   plus the host's node and npm, built once per machine and cached.
# Idempotent and safe to run concurrently (flock). Exits 3 with a message when podman is missing.
set -euo pipefail
cache="${DOCUPOD_CI_CACHE:-$HOME/.cache/docupod-ci}"
mkdir -p "$cache/podman"
if ! command -v podman >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  echo "podman/debootstrap are not installed: run .ci/run (it installs podman, buildah, runc, fuse-overlayfs, uidmap, slirp4netns, debootstrap)" >&2
  exit 3
fi
conf="$cache/podman/containers.conf"
storage="$cache/podman/storage.conf"
cat > "$conf.tmp" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
init = true
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
cat > "$storage.tmp" <<CONF
[storage]
driver = "overlay"
graphroot = "$cache/podman/graph"
runroot = "$cache/podman/run"
CONF
mv "$conf.tmp" "$conf"; mv "$storage.tmp" "$storage"
export CONTAINERS_CONF="$conf" CONTAINERS_STORAGE_CONF="$storage"

base="docker.io/library/node:20-bookworm-slim"
(
  flock 9
  if ! podman image exists "$base"; then
    if ! podman image exists localhost/debian-minbase:bookworm; then
      mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
      mirror="${mirror:-http://deb.debian.org/debian}"
      rootfs=$(mktemp -d "$cache/rootfs.XXXX")
      debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 \
        || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
      rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
      tar -C "$rootfs" -c . | podman import - localhost/debian-minbase:bookworm >/dev/null 2>&1
      rm -rf "$rootfs"
    fi
    ctx=$(mktemp -d "$cache/nodebase.XXXX")
    cp "$(readlink -f "$(command -v node)")" "$ctx/node"
    cp -a "$(dirname "$(readlink -f "$(command -v npm)")")/.." "$ctx/npm"
    cat > "$ctx/Containerfile" <<'CF'
FROM localhost/debian-minbase:bookworm
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
ENV NODE_VERSION=host
CMD ["node"]
CF
    podman build --format docker --pull=never --network host -t "$base" "$ctx" >"$cache/nodebase.log" 2>&1 \
      || { tail -20 "$cache/nodebase.log" >&2; exit 1; }
    rm -rf "$ctx"
  fi
) 9>"$cache/podman/base.lock"
printf 'export CONTAINERS_CONF=%q CONTAINERS_STORAGE_CONF=%q\n' "$conf" "$storage"
