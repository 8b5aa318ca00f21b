#!/usr/bin/env bash
# Two builds of troupe side by side, alternating A and B each round so that both see the same
# machine: `bench engine` at batch 1, `bench engine --concurrency`, and `bench serve` through
# `troupe up --workers 1` over HTTP. One JSON line per run: {"build","round","bench","report"}.
# Usage: ab_compare.sh BIN_A BIN_B ENGINE_MODEL SERVE_MODEL [ROUNDS] [CONCURRENCY]
#   ENGINE_MODEL: e.g. the TinyLlama-shaped make-tiny model (docs/PERFORMANCE.md);
#   SERVE_MODEL:  e.g. the default make-tiny model (small, so that the cluster's own costs show).
set -euo pipefail
a=$1 b=$2 engine_model=$3 serve_model=$4 rounds=${5:-2} conc=${6:-"1,32"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

source "$(dirname "$0")/serve_through_up.sh"

for round in $(seq 1 "$rounds"); do
  for build in A B; do
    bin=$a
    [[ $build == B ]] && bin=$b
    line() { echo "{\"build\":\"$build\",\"round\":$round,\"bench\":\"$1\",\"report\":$2}"; }
    line batch1 "$("$bin" bench engine --model "$engine_model" --prompt-len 512 --gen 128 --json)"
    line concurrency "$("$bin" bench engine --model "$engine_model" --concurrency "$conc" --prompt-len 256 \
      --gen 64 --json)"
    line serve "$(serve_through_up "$bin" "$serve_model" 1 2 "$tmp" --num-prompts 200 --request-rate 16 \
      --input-len 128 --output-len 64 --seed 1)"
  done
done
