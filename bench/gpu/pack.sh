#!/usr/bin/env bash
# Builds the CUDA binaries on this (GPU-less) machine and packs them, with the shared libraries a
# GPU machine's image lacks, into .gpu/pack.tar.xz at the repository root (about 15 MB: what
# travels to the device is capped at 64 MiB), for the device tool:
#   bash bench/gpu/pack.sh        # here
#   run: bash bench/gpu/check.sh, carry [".gpu"]   # there
# The GPU machine cannot install our Debian dependencies (it reaches no package registry), so the
# binaries travel instead. System libraries (libc, libm, libstdc++, ...) and the big CUDA libraries
# (cuBLAS, cuBLASLt, NCCL, which that image has) stay behind.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${TROUPE_GPU_BUILD:-$root/build-gpu}"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTROUPE_CUDA=ON >/dev/null
ninja -C "$build" troupe cuda_tests parallel_tests
pack="$root/.gpu/pack"
rm -rf "$root/.gpu"
mkdir -p "$pack/bin" "$pack/lib"
bins=("$build/cli/troupe" "$build/tests/cuda_tests" "$build/tests/parallel_tests")
cp "${bins[@]}" "$pack/bin/"
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|libpthread\.|librt\.|libgcc_s\.|libstdc\+\+\.|libcuda\.|libcublas|libcublasLt|libnccl)'
for bin in "${bins[@]}"; do
  ldd "$bin" | awk '/=>/ {print $1, $3}'
done | sort -u | while read -r name path; do
  [[ "$name" =~ $skip ]] && continue
  cp -L "$path" "$pack/lib/$name"
done
strip --strip-unneeded "$pack"/bin/* "$pack"/lib/* 2>/dev/null || true
tar -C "$root/.gpu" -cJf "$root/.gpu/pack.tar.xz" pack
rm -rf "$pack"
du -sh "$root/.gpu/pack.tar.xz"
