#!/usr/bin/env bash
# The autoscaler under a load step (issue 19): `troupe up` with the target policy on outstanding
# tokens per group, driven by `troupe bench serve --rate-schedule` (low, then high, then low again),
# with the replicas sampled from /metrics into the report and the plot.
# Prints the bench's JSON report (with "replicas": [[t, n], ...]) and the autoscaler's log lines.
# Usage: autoscale.sh TROUPE_BIN MODEL OUT.svg [SCHEDULE] [UP_ARGS...]
#   SCHEDULE default 0:4,20:70,60:4,100:0 (requests/s from each second on; the last 0 ends it)
set -euo pipefail
source "$(dirname "$0")/wait_up.sh"
bin=$1 model=$2 svg=$3 schedule=${4:-0:4,20:70,60:4,100:0}
shift $(( $# < 4 ? $# : 4 ))
tmp=$(mktemp -d)
pid=
trap '[[ -n $pid ]] && kill -TERM $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT

"$bin" up --model "$model" --min-workers 1 --max-workers 2 --threads 1 --scale-policy target \
  --scale-signal outstanding --scale-target 2048 --scale-up-window 5 --scale-down-window 20 --no-cache \
  --http 127.0.0.1:0 --port-file "$tmp/ports" "$@" > "$tmp/up.log" 2>&1 &
pid=$!
url=$(wait_up "$tmp/ports")
"$bin" bench serve --url "$url" --input-len 128 --output-len 64 --num-prompts 100000 --rate-schedule "$schedule" \
  --seed 1 --json --plot "$svg" 2>/dev/null
curl -s "$url/metrics" | grep -E '^troupe_autoscaler_(cold_start_seconds_(sum|count)|decisions_total)' || true
grep -E 'autoscaler: ' "$tmp/up.log" | sed 's/^/log: /'
