#!/usr/bin/env bash
# Installs the Debian packages pdyolo builds with, when any is missing. Needs root (or sudo).
#   scripts/install-deps.sh          what building the library and the CLI needs
#   scripts/install-deps.sh --test   plus what the tests and benchmarks need (doctest, Eigen,
#                                    Google Benchmark, stb, the AArch64 cross compiler and qemu)
set -euo pipefail
packages=(cmake g++ make libomp-dev libstb-dev)
if [ "${1:-}" = "--test" ]; then
  packages+=(doctest-dev libeigen3-dev libbenchmark-dev g++-aarch64-linux-gnu qemu-user clang libclang-rt-dev libomp-dev)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
