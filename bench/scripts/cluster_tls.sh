#!/usr/bin/env bash
# What mutual TLS on the cluster port costs the serving path: the same open-loop workload (one
# --seed) through `troupe up --workers 2` with TLS (the default) and with --insecure-cluster,
# alternating each round so that both see the same machine. One JSON line per run:
# {"cluster","round","rate","report"}.
# Usage: cluster_tls.sh TROUPE_BIN MODEL [ROUNDS] [RATES]
set -euo pipefail
bin=$1 model=$2 rounds=${3:-3} rates=${4:-"16 64"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

source "$(dirname "$0")/serve_through_up.sh"

for round in $(seq 1 "$rounds"); do
  for rate in $rates; do
    for mode in tls insecure; do
      UP_ARGS=""
      [[ $mode == insecure ]] && UP_ARGS="--insecure-cluster"
      export UP_ARGS
      echo "{\"cluster\":\"$mode\",\"round\":$round,\"rate\":$rate,\"report\":$(serve_through_up "$bin" "$model" 2 1 "$tmp" \
        --num-prompts 200 --request-rate "$rate" --input-len 128 --output-len 64 --seed 1)}"
    done
  done
done
