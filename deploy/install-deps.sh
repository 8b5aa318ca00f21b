#!/usr/bin/env bash
# Installs every Debian 12 package that Troupe's build, tests and benchmarks need. Idempotent: a
# second run installs nothing new. CUDA (nvcc, cuBLAS, NCCL) is not from apt: it is expected at
# /usr/local/cuda, and the build is CPU-only without it.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git curl
  clang libclang-rt-14-dev            # libFuzzer targets (fuzz_parsers test)
  libgtest-dev libgmock-dev libbenchmark-dev
  libsimdjson-dev libpcre2-dev libutf8proc-dev libcli11-dev libspdlog-dev libfmt-dev
  libopenblas-dev libhwy-dev
  libxxhash-dev                       # XXH3 block hashes (engine/kv_cache)
  libcaf-dev libcapnp-dev capnproto libgloo-dev libhiredis-dev redis-server
  libssl-dev                          # the cluster CA and certificates, mutual TLS on the cluster port
)
# Node.js + npm run test-only reference implementations from npm; a machine that already has them
# (e.g. from NodeSource, which conflicts with Debian's npm package) keeps its own.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
