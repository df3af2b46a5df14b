#!/usr/bin/env bash
# Installs the Debian packages pdyolo builds with, when any is missing. Needs root (or sudo).
#   scripts/install-deps.sh          what building the library and the CLI needs
#   scripts/install-deps.sh --test   plus what the tests and benchmarks need (doctest, Eigen,
#                                    Google Benchmark, stb, the AArch64 cross compiler and qemu),
#                                    and a venv, .venv, with PyPI's onnx and onnxruntime (the export
#                                    tests' reference tools; never a dependency of the library)
set -euo pipefail
packages=(cmake g++ make libomp-dev libstb-dev)
if [ "${1:-}" = "--test" ]; then
  packages+=(doctest-dev libeigen3-dev libbenchmark-dev g++-aarch64-linux-gnu qemu-user clang libclang-rt-dev libomp-dev python3-venv)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ "${1:-}" = "--test" ]; then
  # The export tests' reference tools, in a venv of Debian's python3 in the project's root.
  venv="$(cd "$(dirname "$0")/.." && pwd)/.venv"
  python=/usr/bin/python3
  [ -x "$python" ] || python=python3
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv" || echo "install-deps: could not make $venv; the ONNX export tests will be skipped" >&2
  if [ -x "$venv/bin/python" ] && ! "$venv/bin/python" -c "import onnx, onnxruntime, numpy" 2>/dev/null; then
    echo "installing into $venv: onnx onnxruntime numpy (PyPI)"
    "$venv/bin/pip" install -q --disable-pip-version-check onnx onnxruntime numpy || echo "install-deps: pip failed; the ONNX export tests will be skipped" >&2
  fi
fi
