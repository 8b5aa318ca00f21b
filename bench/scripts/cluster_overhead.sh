#!/usr/bin/env bash
# The cluster's own overhead per request (router, actors, HTTP): the same open-loop workload (same
# prompts, same Poisson arrival times: one --seed) sent
#   (a) straight into one engine in-process        (troupe bench engine --request-rate),
#   (b) through `troupe up --workers 1` over HTTP  (troupe bench serve), the same single engine,
#   (c) through `troupe up --workers 2` over HTTP,
# at each rate; prints one JSON line per run. (b) - (a) is the overhead.
# Usage: cluster_overhead.sh TROUPE_BIN MODEL [RATES] [NUM_PROMPTS] [INPUT_LEN] [OUTPUT_LEN]
set -euo pipefail
bin=$1 model=$2 rates=${3:-"4 16 64"} n=${4:-200} input=${5:-128} output=${6:-64}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

source "$(dirname "$0")/serve_through_up.sh"

for rate in $rates; do
  echo "{\"run\":\"engine\",\"rate\":\"$rate\",\"report\":$("$bin" bench engine --model "$model" --threads 1 \
    --request-rate "$rate" --num-prompts "$n" --prompt-len "$input" --gen "$output" --seed 1 --json)}"
  echo "{\"run\":\"up-1\",\"rate\":\"$rate\",\"report\":$(serve_through_up "$bin" "$model" 1 1 "$tmp" --num-prompts "$n" --request-rate "$rate" --input-len "$input" --output-len "$output" --seed 1)}"
  echo "{\"run\":\"up-2\",\"rate\":\"$rate\",\"report\":$(serve_through_up "$bin" "$model" 2 1 "$tmp" --num-prompts "$n" --request-rate "$rate" --input-len "$input" --output-len "$output" --seed 1)}"
done
