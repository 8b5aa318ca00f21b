#!/usr/bin/env bash
# Installs the npm test oracles (see package.json) into tests/oracle/node_modules, only when the
# lock file changed since the last install. --ignore-scripts: no install script runs, so no native
# runtime is downloaded; the oracles used are pure JavaScript.
set -euo pipefail
dir=$(cd "$(dirname "$0")" && pwd)
stamp="$dir/node_modules/.troupe-lock-sha256"
want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "tests/oracle: npm is not installed (deploy/install-deps.sh installs it)" >&2
  exit 1
fi
cd "$dir"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
