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

serve_through_up() {  # workers rate
  "$bin" up --model "$model" --workers "$1" --threads 1 --http 127.0.0.1:0 --port-file "$tmp/ports" \
    > "$tmp/up.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 200); do
    [[ -f "$tmp/ports" ]] && curl -sf "http://127.0.0.1:$(sed -n 's/http=//p' "$tmp/ports")/health" \
      | grep -q "\"live_groups\":$1" && break
    sleep 0.1
  done
  local port
  port=$(sed -n 's/http=//p' "$tmp/ports")
  "$bin" bench serve --url "http://127.0.0.1:$port" --num-prompts "$n" --request-rate "$2" \
    --input-len "$input" --output-len "$output" --seed 1 --json
  kill -TERM "$pid"
  wait "$pid"
  rm -f "$tmp/ports"
}

for rate in $rates; do
  echo "{\"run\":\"engine\",\"rate\":\"$rate\",\"report\":$("$bin" bench engine --model "$model" --threads 1 \
    --request-rate "$rate" --num-prompts "$n" --prompt-len "$input" --gen "$output" --seed 1 --json)}"
  echo "{\"run\":\"up-1\",\"rate\":\"$rate\",\"report\":$(serve_through_up 1 "$rate")}"
  echo "{\"run\":\"up-2\",\"rate\":\"$rate\",\"report\":$(serve_through_up 2 "$rate")}"
done
