#!/usr/bin/env bash
# Makes a GPU-less Debian machine WebGPU-capable: Mesa lavapipe 24+ (software Vulkan) for Dawn,
# and optionally Debian's Chromium (its SwiftShader is the fallback adapter, and the browser tests
# drive it). The backports source is derived from the machine's own apt sources: no host name here.
#   usage: scripts/setup-webgpu.sh [--chromium]
set -euo pipefail
want_chromium=0
[ "${1:-}" = "--chromium" ] && want_chromium=1

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "setup-webgpu: need root and apt-get to install Mesa lavapipe 24+ (mesa-vulkan-drivers from backports); install a Vulkan driver by hand" >&2
  exit 1
fi
. /etc/os-release
codename=${VERSION_CODENAME:-bookworm}
export DEBIAN_FRONTEND=noninteractive

lavapipe_version() {
  dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | sed -E 's/^[0-9]+://; s/[^0-9.].*//' | cut -d. -f1
}

# Find the URI of the main Debian archive among the existing sources (deb822 or one-line format).
main_uri() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v c="$codename" '
      /^URIs:/ {u=$2} /^Suites:/ {s=$0}
      /^$/ { if (u != "" && s ~ (" " c "( |$)")) { print u; exit } u=""; s="" }
      END { if (u != "" && s ~ (" " c "( |$)")) print u }' "$f" | head -n1
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v c="$codename" '$1=="deb" && $0 ~ (" " c " ") { for (i=2;i<=NF;i++) if ($i ~ /^(https?|file|mirror):/) { print $i; exit } }' "$f"
  done
}

have_backports() {
  grep -rqs -- "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null
}

need_lavapipe=1
v=$(lavapipe_version || true)
if [ -n "$v" ] && [ "$v" -ge 24 ]; then need_lavapipe=0; fi

if [ $need_lavapipe = 1 ]; then
  if ! have_backports; then
    uri=$(main_uri | head -n1)
    if [ -z "$uri" ]; then
      echo "setup-webgpu: cannot find the Debian archive among the apt sources to derive ${codename}-backports from" >&2
      exit 1
    fi
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    {
      echo "Types: deb"
      echo "URIs: $uri"
      echo "Suites: ${codename}-backports"
      echo "Components: main"
      [ -f "$keyring" ] && echo "Signed-By: $keyring"
    } > /etc/apt/sources.list.d/semi-drdnet-backports.sources
  fi
  apt-get update -qq
  apt-get install -y -qq -t "${codename}-backports" mesa-vulkan-drivers libvulkan1 >/dev/null \
    || apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
  v=$(lavapipe_version || true)
  if [ -z "$v" ] || [ "$v" -lt 24 ]; then
    echo "setup-webgpu: installed mesa-vulkan-drivers is ${v:-missing}; Dawn needs Mesa 24 or newer" >&2
    exit 1
  fi
fi

if [ $want_chromium = 1 ] && ! command -v chromium >/dev/null; then
  [ $need_lavapipe = 1 ] || apt-get update -qq
  apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi
echo "setup-webgpu: Mesa lavapipe $(lavapipe_version)$(command -v chromium >/dev/null && echo ', chromium present')"
