#!/usr/bin/env bash
# Response-cache hits through the HTTP API: `troupe up --workers 1`, one request to fill the cache,
# then N identical greedy streaming requests (every prompt the same: --shared-prefix = --input-len)
# at each concurrency; prints bench serve's JSON per run, then the router's hit-latency histogram.
# Usage: cache_hits.sh TROUPE_BIN MODEL [N] [CONCURRENCIES]
set -euo pipefail
bin=$1 model=$2 n=${3:-20000} concs=${4:-"8 32"}
tmp=$(mktemp -d)
"$bin" up --model "$model" --workers 1 --threads 1 --http 127.0.0.1:0 --port-file "$tmp/ports" > "$tmp/up.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid; wait $pid; rm -rf "$tmp"' EXIT
for _ in $(seq 1 200); do
  [[ -f "$tmp/ports" ]] && curl -sf "http://127.0.0.1:$(sed -n 's/http=//p' "$tmp/ports")/health" >/dev/null && break
  sleep 0.1
done
url="http://127.0.0.1:$(sed -n 's/http=//p' "$tmp/ports")"
args=(--input-len 128 --shared-prefix 128 --output-len 16 --request-rate inf --json)
"$bin" bench serve --url "$url" --num-prompts 1 "${args[@]}" > /dev/null
for c in $concs; do
  echo "{\"concurrency\":$c,\"report\":$("$bin" bench serve --url "$url" --num-prompts "$n" --max-concurrency "$c" "${args[@]}")}"
done
curl -s "$url/metrics" | grep -E "troupe_cache_hit_latency_seconds|troupe_cache_(hits|misses)_total|troupe_group_requests_routed"
