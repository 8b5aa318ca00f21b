#!/usr/bin/env bash
# The README's second command (and CI's): install, build everything with tests, run the whole suite,
# then the sanitized subset.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/deploy/build.sh" -DTROUPE_TESTS=ON
cd "$root/build"
ctest --output-on-failure -j 2 --timeout 900
# Then the sanitized subset (ASan + UBSan; deploy/test-sanitizers.sh says which suites and why).
bash "$root/deploy/test-sanitizers.sh" --subset
