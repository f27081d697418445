#!/usr/bin/env bash
# Installs every Debian package that omnigen's build and tests need. The README and .ci/run both
# call this one script, so a dependency added here reaches users and CI together.
set -euo pipefail
packages=(
  build-essential cmake pkg-config python3
  libdnnl-dev libopenblas-dev
  libcjson-dev libpcre2-dev libpng-dev libstb-dev
  libmicrohttpd-dev
  libopenmpi-dev openmpi-bin
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends "${missing[@]}"
fi
