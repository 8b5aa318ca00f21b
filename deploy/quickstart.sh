#!/usr/bin/env bash
# The README's first command: install, build, and run a whole local cluster (`troupe up`: the router
# with the OpenAI-compatible API on http://127.0.0.1:8000 and two worker processes) on the embedded
# default model, generated on first use. Ctrl-C stops everything. Extra arguments go to `troupe up`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/deploy/build.sh" -DTROUPE_TESTS=OFF
echo "quickstart: try  curl -N http://127.0.0.1:8000/v1/chat/completions -d '{\"model\":\"default\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],\"stream\":true}'"
exec "$root/build/cli/troupe" up "$@"
