#!/usr/bin/env bash
# The GPU check of issue 7, one script for one H200, under 5 minutes:
#  1. the CUDA kernels and backend against the CPU backend (cuda_tests: bf16 logits within 1e-2
#     relative, identical greedy tokens), and NCCL with tp = 1 (parallel_tests' nccl_* tests);
#  2. `troupe generate` with --device cuda and --device cpu on a ~100M-parameter bf16 model made by
#     make-tiny: identical greedy tokens for 32 steps, logprobs within 1e-2 relative;
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

step "3. bench gpu on a ~1.1B model"
"$bin/troupe" bench gpu --model "$models/m1b" --batches 1,16,64 --context 512 --prefill 2048 || status=1
"$bin/troupe" bench gpu --model "$models/m1b" --batches 1,16,64 --context 512 --prefill 2048 --json > "$out/bench.json" || status=1
cat "$out/bench.json"
echo
echo "check: $([ $status -eq 0 ] && echo passed || echo FAILED)"
exit $status
