#!/usr/bin/env bash
# Installs node and npm with apt when missing: the quality bench compares llmdocs with
# widdershins, an npm package (the bench installs it under ~/.cache/llmdocs itself).
# Tests never need node.
set -euo pipefail

command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && exit 0
echo "installing nodejs and npm with apt" >&2
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to install node" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
