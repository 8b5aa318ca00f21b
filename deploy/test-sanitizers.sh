#!/usr/bin/env bash
# The engine, scheduler, KV-cache, router, front-end and cluster suites built with AddressSanitizer and
# UndefinedBehaviorSanitizer, in build-asan/ (CPU only). Any finding fails the run: both halt on the
# first error, except UBSan findings in third-party headers listed, each with why it is harmless,
# in deploy/sanitizers/ubsan.supp (suppressions need recoverable checks, hence no
# -fno-sanitize-recover). The cluster suite drives the sanitized `troupe` binary,
# so the router, workers and front ends run sanitized too. About 25 min on 2 cores from scratch.
#
# --subset (what CI runs, after the whole suite, in deploy/test.sh): the scheduler, KV-cache and
# tokenizer suites only, the engine's parts that index memory by request data and read untrusted
# text, built without `troupe` (44 compile units instead of the ~250 of the whole set: a few minutes
# on 2 cores instead of ~20, so CI stays far under its 45-minute budget). The actor, network and
# cluster suites run sanitized only in the full run, before a release and after changes there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
subset=false
[[ "${1:-}" == "--subset" ]] && subset=true
bash "$root/deploy/install-deps.sh"
flags="-fsanitize=address,undefined -fno-omit-frame-pointer -g1"
cmake -S "$root" -B "$root/build-asan" -G Ninja -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG" -DTROUPE_CUDA=OFF \
  -DTROUPE_TESTS=ON "-DCMAKE_CXX_FLAGS=$flags" "-DCMAKE_C_FLAGS=$flags" \
  "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined" >/dev/null
if $subset; then
  suites=(scheduler_tests kv_cache_tests tokenizer_tests)
  cmake --build "$root/build-asan" -j "$(nproc)" --target "${suites[@]}"
else
  suites=(engine_tests scheduler_tests kv_cache_tests router_tests frontend_tests cluster_tests)
  cmake --build "$root/build-asan" -j "$(nproc)" --target troupe "${suites[@]}"
fi
# Leak checking is off: CAF 0.17 and OpenBLAS keep process-lifetime allocations that LSan reports.
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=1:detect_stack_use_after_return=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions=$root/deploy/sanitizers/ubsan.supp
cd "$root/build-asan"
labels=$(IFS='|'; echo "${suites[*]}")
ctest --output-on-failure -j 2 --timeout 1800 -L "^($labels)\$"
