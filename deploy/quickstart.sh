#!/usr/bin/env bash
# The README's first command: install, build, make the default model (a small random-weight
# Llama-shaped model with a real tokenizer) and run a generation on it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/deploy/build.sh" -DTROUPE_TESTS=OFF
model="$root/models/tiny-llama"
if [[ ! -f "$model/config.json" ]]; then
  "$root/build/cli/troupe" model make-tiny "$model" --gguf "$model.gguf" --gguf-type q8_0
fi
"$root/build/cli/troupe" model info "$model"
"$root/build/cli/troupe" generate --model "$model" --prompt "The actors of a distributed system" \
  --max-tokens 48 --temperature 0.8 --top-p 0.95 --seed 7
