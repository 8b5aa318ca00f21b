#!/usr/bin/env bash
# Overload and fairness through `troupe up` (issue 18), with `troupe bench serve` as the client:
#   capacity   closed loop at --max-running concurrency: the request rate the cluster sustains (C);
#   unloaded   open loop at C/4: the TTFT a client sees when nothing waits;
#   overload   open loop at F x C (F = $OVERLOAD_FACTOR, default 16): the refused (429) and the
#              admitted requests' TTFT;
#   light      the light key alone at C/4, then the same beside a flooding key at F x C (env
#              LIGHT_N: its number of requests, default 100).
# Every run uses --input-len 128 --output-len 64 and its own --seed (its own prompts); `up` runs with
# --no-cache, so every request reaches the worker. One JSON line per run: {"run", "rss_kb", "report"}
# where rss_kb is the `up` process's (the router's) resident set after the run.
# Usage: overload.sh TROUPE_BIN MODEL [MAX_RUNNING] [UP_ARGS...]
set -euo pipefail
source "$(dirname "$0")/wait_up.sh"
bin=$1 model=$2 max_running=${3:-16}
shift $(( $# < 3 ? $# : 3 ))
tmp=$(mktemp -d)
pid=
trap '[[ -n $pid ]] && kill -TERM $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
printf 'flood-key label=flood\nlight-key label=light\n' > "$tmp/keys"

"$bin" up --model "$model" --workers 1 --threads 1 --max-running "$max_running" --api-key-file "$tmp/keys" \
  --no-cache --http 127.0.0.1:0 --port-file "$tmp/ports" "$@" > "$tmp/up.log" 2>&1 &
pid=$!
url=$(wait_up "$tmp/ports")

serve() { "$bin" bench serve --url "$url" --input-len 128 --output-len 64 --json "$@" 2>/dev/null; }
num() { grep -o "\"$1\":[0-9.e+-]*" | head -1 | cut -d: -f2; }
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$pid/status"; }
line() { echo "{\"run\":\"$1\",\"rss_kb\":$(rss),\"report\":$2}"; }

serve --api-key light-key --num-prompts $((max_running * 6)) --request-rate inf --max-concurrency "$max_running" \
  --seed 1 > "$tmp/capacity"
line capacity "$(cat "$tmp/capacity")"
rate=$(num request_throughput < "$tmp/capacity")
quarter=$(awk -v r="$rate" 'BEGIN { printf "%.3f", r / 4 }')
factor=${OVERLOAD_FACTOR:-16}
over=$(awk -v r="$rate" -v f="$factor" 'BEGIN { printf "%.3f", r * f }')
over_n=$(awk -v r="$rate" -v f="$factor" 'BEGIN { printf "%d", r * f * 8 }')  # ~8 s of arrivals

line unloaded "$(serve --api-key light-key --num-prompts 60 --request-rate "$quarter" --seed 2)"
line overload "$(serve --api-key flood-key --num-prompts "$over_n" --request-rate "$over" --seed 3)"
# The light key's runs: LIGHT_N requests (default 100, ~8 s at C/4), so that its p99 is not just
# its slowest request; the flood beside it lasts 2 s longer than the light run.
light_n=${LIGHT_N:-100}
flood_n=$(awk -v r="$rate" -v f="$factor" -v n="$light_n" 'BEGIN { printf "%d", r * f * (n / (r / 4) + 2) }')
line light_alone "$(serve --api-key light-key --num-prompts "$light_n" --request-rate "$quarter" --seed 4)"
serve --api-key flood-key --num-prompts "$flood_n" --request-rate "$over" --seed 5 > "$tmp/flood" &
flood=$!
sleep 1  # the flood is under way
serve --api-key light-key --num-prompts "$light_n" --request-rate "$quarter" --seed 6 > "$tmp/light"
wait "$flood"
line flood_beside_light "$(cat "$tmp/flood")"
line light_beside_flood "$(cat "$tmp/light")"
