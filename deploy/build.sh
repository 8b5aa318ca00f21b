#!/usr/bin/env bash
# Installs the dependencies and builds Troupe into build/ (Release; CUDA parts when nvcc is found).
# Used by the README's two commands; safe to run again (incremental).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/deploy/install-deps.sh"
cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$root/build" -j "$(nproc)"
