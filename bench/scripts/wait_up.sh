# Sourced by the benchmark scripts: wait_up PORT_FILE prints the HTTP base URL of the `troupe up`
# that writes PORT_FILE once its /health reports one live group (at most 30 s).
wait_up() {
  local ports=$1
  for _ in $(seq 1 300); do
    [[ -f "$ports" ]] && curl -sf "http://127.0.0.1:$(sed -n 's/http=//p' "$ports")/health" \
      | grep -q '"live_groups":1' && break
    sleep 0.1
  done
  echo "http://127.0.0.1:$(sed -n 's/http=//p' "$ports")"
}
