#!/usr/bin/env bash
# The GPU check of issue 7, one script for one H200, under 5 minutes:
#  1. the CUDA kernels and backend against the CPU backend (cuda_tests: bf16 logits within 1e-2
#     relative, identical greedy tokens), and NCCL with tp = 1 (parallel_tests' nccl_* tests);
#  2. `troupe generate` with --device cuda and --device cpu on a ~100M-parameter bf16 model made by
#     make-tiny: identical greedy tokens for 32 steps, logprobs within 1e-2 relative; then the same
#     model served by `troupe up --device cuda` (the batched engine, decode CUDA graphs, sampling on
#     the device): four concurrent greedy completions identical to the CPU's;
#  3. `troupe bench gpu` on a ~1.1B-parameter (TinyLlama-shaped) bf16 model: decode tokens/s at
#     batch 1, 16 and 64 as fractions of the bandwidth roofline, prefill TFLOP/s at 2,048 tokens
#     against the cuBLASLt bf16 GEMM rate measured in the same run, device memory used.
# Uses the binaries packed by bench/gpu/pack.sh into .gpu/pack.tar.xz when present (the GPU machine
# cannot install our dependencies); otherwise builds with CUDA here. Results also go to $OUT (or
# /tmp/gpu-check): check.log and bench.json.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${OUT:-/tmp/gpu-check}"
mkdir -p "$out"
exec > >(tee "$out/check.log") 2>&1
if [ -f "$root/.gpu/pack.tar.xz" ]; then
  unpacked="${TMPDIR:-/tmp}/troupe-gpu-pack"
  rm -rf "$unpacked" && mkdir -p "$unpacked" && tar -C "$unpacked" -xJf "$root/.gpu/pack.tar.xz" || exit 1
  bin="$unpacked/pack/bin"
  libs="$unpacked/pack/lib"
  # cuBLAS(Lt) and NCCL: the CUDA toolkit's, else the Python wheels' (nvidia-cublas, nvidia-nccl-cu13).
  for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do [ -d "$d" ] && libs="$libs:$d"; done
  py_libs="$(python3 - <<'PY' 2>/dev/null
import importlib, os
for name in ("nvidia.cublas", "nvidia.nccl", "nvidia.cuda_runtime"):
    try:
        m = importlib.import_module(name)
        for p in m.__path__:
            print(os.path.join(p, "lib"))
    except Exception:
        pass
PY
)"
  for d in $py_libs; do libs="$libs:$d"; done
  export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
  cmake -S "$root" -B "$root/build-gpu" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTROUPE_CUDA=ON >/dev/null || exit 1
  ninja -C "$root/build-gpu" troupe cuda_tests parallel_tests || exit 1
  bin="$root/build-gpu/bin-links"
  mkdir -p "$bin"
  ln -sf "$root/build-gpu/cli/troupe" "$root/build-gpu/tests/cuda_tests" "$root/build-gpu/tests/parallel_tests" "$bin/"
fi
status=0
step() { echo; echo "== $*"; }
nvidia-smi -L || true

step "1. CUDA backend vs CPU backend, NCCL tp = 1"
"$bin/cuda_tests" || status=1
"$bin/parallel_tests" --gtest_filter='nccl*' || status=1

models="${TMPDIR:-/tmp}/troupe-gpu-models"
mkdir -p "$models"
[ -f "$models/m100/config.json" ] || "$bin/troupe" model make-tiny "$models/m100" --layers 12 --dim 768 --heads 12 \
  --kv-heads 4 --ffn 2048 --vocab 32000 --max-position 4096 --dtype bf16 --seed 7 >/dev/null
[ -f "$models/m1b/config.json" ] || "$bin/troupe" model make-tiny "$models/m1b" --layers 22 --dim 2048 --heads 32 \
  --kv-heads 4 --ffn 5632 --vocab 32000 --max-position 4096 --dtype bf16 --seed 8 >/dev/null

step "2. generate: --device cuda vs --device cpu, 32 greedy steps on a ~100M model"
prompt=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16
"$bin/troupe" generate --model "$models/m100" --prompt-tokens $prompt --max-tokens 32 --temperature 0 --ignore-eos \
  --logprobs 0 --json --device cpu > "$out/cpu.json" || status=1
"$bin/troupe" generate --model "$models/m100" --prompt-tokens $prompt --max-tokens 32 --temperature 0 --ignore-eos \
  --logprobs 0 --json --device cuda > "$out/cuda.json" || status=1
python3 - "$out/cpu.json" "$out/cuda.json" <<'PY' || status=1
import json, sys
try:
    cpu, gpu = (json.load(open(p)) for p in sys.argv[1:3])
except ValueError as e:
    sys.exit(f"generate printed no JSON on one device (its error is above): {e}")
same = cpu["tokens"] == gpu["tokens"]
worst = max(abs(a["logprob"] - b["logprob"]) / max(1.0, abs(a["logprob"]))
            for a, b in zip(cpu["logprobs"], gpu["logprobs"]))
print(f"greedy tokens identical: {same} ({len(cpu['tokens'])} steps); worst logprob difference {worst:.2e} (relative)")
sys.exit(0 if same and worst < 1e-2 else 1)
PY

step "2b. serving: troupe up --device cuda (engine, decode CUDA graphs, device sampling) vs generate --device cpu"
# Four prompts of different lengths at once through the cluster's Cap'n Proto API: a continuously
# batched engine on the GPU whose decode steps run as graphs and sample on the device. Each greedy
# completion must be the CPU's.
serve_device="${CHECK_SERVE_DEVICE:-cuda}"
http_port=18080 rpc_port=18081
"$bin/troupe" up --model "$models/m100" --workers 1 --device "$serve_device" --http 127.0.0.1:$http_port \
  --rpc 127.0.0.1:$rpc_port --no-cache > "$out/up.log" 2>&1 &
up_pid=$!
python3 - "$http_port" <<'PY' || status=1
import sys, time, urllib.request
for _ in range(240):
    try:
        if urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health", timeout=1).status == 200:
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.5)
sys.exit("the cluster never reported a live shard group (see up.log)")
PY
prompts=("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16" "21,22,23" "31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66,67,68,69,70" "7")
pids=()
for i in "${!prompts[@]}"; do
  "$bin/troupe" generate --connect 127.0.0.1:$rpc_port --prompt-tokens "${prompts[$i]}" --max-tokens 32 --temperature 0 \
    --ignore-eos --json > "$out/served$i.json" 2>&1 &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
kill "$up_pid" 2>/dev/null; wait "$up_pid" 2>/dev/null
for i in "${!prompts[@]}"; do
  "$bin/troupe" generate --model "$models/m100" --prompt-tokens "${prompts[$i]}" --max-tokens 32 --temperature 0 \
    --ignore-eos --json --device cpu > "$out/served_cpu$i.json" || status=1
done
python3 - "$out" "${#prompts[@]}" <<'PY' || status=1
import json, sys
out, n = sys.argv[1], int(sys.argv[2])
bad = 0
for i in range(n):
    try:
        got, want = (json.load(open(f"{out}/{name}{i}.json")) for name in ("served", "served_cpu"))
    except ValueError as e:
        sys.exit(f"prompt {i}: no JSON (see served{i}.json and up.log): {e}")
    same = got["tokens"] == want["tokens"]
    bad += not same
    print(f"prompt {i}: served greedy tokens identical to the CPU's: {same}")
sys.exit(1 if bad else 0)
PY
grep -E "CUDA graphs are off" "$out/up.log" && status=1

step "3. bench gpu on a ~1.1B model"
"$bin/troupe" bench gpu --model "$models/m1b" --batches 1,16,64 --context 512 --prefill 2048 || status=1
"$bin/troupe" bench gpu --model "$models/m1b" --batches 1,16,64 --context 512 --prefill 2048 --json > "$out/bench.json" || status=1
cat "$out/bench.json"
echo
echo "check: $([ $status -eq 0 ] && echo passed || echo FAILED)"
exit $status
