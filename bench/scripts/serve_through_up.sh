# Sourced by the bench scripts: serve_through_up BIN MODEL WORKERS THREADS TMP_DIR BENCH_SERVE_ARGS...
# starts `BIN up --model MODEL --workers WORKERS --threads THREADS` on free loopback ports, waits until every worker
# has joined, runs `BIN bench serve` against it with the given arguments (its JSON on stdout), and
# stops the cluster with SIGTERM. $UP_ARGS (optional) goes to `up` as extra flags.
serve_through_up() {
  local bin=$1 model=$2 workers=$3 threads=$4 tmp=$5
  shift 5
  # shellcheck disable=SC2086
  "$bin" up --model "$model" --workers "$workers" --threads "$threads" \
    --http 127.0.0.1:0 --port-file "$tmp/ports" ${UP_ARGS:-} > "$tmp/up.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 300); do
    [[ -f "$tmp/ports" ]] && curl -sf "http://127.0.0.1:$(sed -n 's/http=//p' "$tmp/ports")/health" \
      | grep -q "\"live_groups\":$workers" && break
    sleep 0.1
  done
  "$bin" bench serve --url "http://127.0.0.1:$(sed -n 's/http=//p' "$tmp/ports")" "$@" --json
  kill -TERM "$pid"
  wait "$pid" || true
  rm -f "$tmp/ports"
}
