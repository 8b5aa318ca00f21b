#!/usr/bin/env bash
# The README's second command (and CI's): install, build everything with tests, run the whole suite.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/deploy/build.sh" -DTROUPE_TESTS=ON
cd "$root/build"
ctest --output-on-failure -j 2 --timeout 900
