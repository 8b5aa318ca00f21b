#!/usr/bin/env bash
# Builds the libFuzzer targets for the checkpoint parsers (safetensors, GGUF), the tokenizer.json
# loader, the chat-template interpreter and the OpenAI request parser with ASan and UBSan, seeds them
# (files from the project's own writers; tokenizer.json files of each family; the real chat
# templates; request bodies), runs each briefly; non-zero if any crashes.
# Usage: run.sh CLANGXX SRC_DIR OUT_DIR   (FUZZ_SECONDS overrides the 20 s per target)
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 CLANGXX SRC_DIR OUT_DIR" >&2
  exit 2
fi
CLANGXX=$1
SRC=$(cd "$2" && pwd)
OUT=$3
SECONDS_PER_TARGET=${FUZZ_SECONDS:-20}
TARGETS=(safetensors gguf tokenizer_json chat_template openai_request)

mkdir -p "$OUT/obj" "$OUT/seeds" "$OUT/corpus" "$OUT/artifacts" "$OUT/logs"

shopt -s nullglob
SOURCES=("$SRC"/engine/model/dtype.cpp "$SRC"/engine/model/mapped_file.cpp "$SRC"/engine/model/json_reader.cpp
         "$SRC"/engine/model/safetensors*.cpp "$SRC"/engine/model/gguf*.cpp)
CHAT_SOURCES=("$SRC"/engine/chat/*.cpp)
TOKENIZER_SOURCES=("$SRC"/engine/tokenizer/*.cpp)
# The request parser needs only the request rules and the sampling parameters' validate() beside
# it, not the rest of the front end or the sampler (whose kernels are not built here).
ROUTER_SOURCES=("$SRC"/frontend/http/openai_*.cpp "$SRC"/frontend/core/api_request.cpp "$SRC"/common/sampling_params.cpp)
shopt -u nullglob
# -fno-sanitize-recover: UBSan findings must stop the run like ASan ones, not just print.
FLAGS=(-std=c++20 -O1 -g -fno-sanitize-recover=all -I"$SRC")

# Rebuild only when a source, header, flag or the compiler changed: ctest runs this every time.
stamp=$( { echo "$CLANGXX ${FLAGS[*]}"; "$CLANGXX" --version | head -n 1;
           cat "${SOURCES[@]}" "$SRC"/engine/model/*.hpp "$SRC"/common/*.hpp "$SRC"/tests/fuzz/*.cpp \
               "${CHAT_SOURCES[@]}" "$SRC"/engine/chat/*.hpp \
               "${TOKENIZER_SOURCES[@]}" "$SRC"/engine/tokenizer/*.hpp \
               "${ROUTER_SOURCES[@]}" "$SRC"/frontend/http/openai_*.hpp "$SRC"/frontend/core/*.hpp; } |
         sha256sum | cut -d' ' -f1)
if [ "$(cat "$OUT/build.stamp" 2>/dev/null || true)" != "$stamp" ]; then
  echo "fuzz: building with $CLANGXX"
  rm -rf "$OUT/build.stamp" "$OUT"/obj
  mkdir -p "$OUT/obj/model" "$OUT/obj/chat" "$OUT/obj/tokenizer" "$OUT/obj/router"
  # One folder of objects per library: the model parsers', the tokenizer's (which also needs the
  # model parsers, for GGUF vocabularies, and the JSON reader), the chat-template interpreter's and
  # the request parser's.
  model_objects=()
  chat_objects=()
  tokenizer_objects=()
  router_objects=()
  for src in "${SOURCES[@]}" "${CHAT_SOURCES[@]}" "${TOKENIZER_SOURCES[@]}" "${ROUTER_SOURCES[@]}"; do
    group=model
    case "$src" in
      "$SRC"/engine/chat/*) group=chat ;;
      "$SRC"/engine/tokenizer/*) group=tokenizer ;;
      "$SRC"/frontend/* | "$SRC"/common/sampling_params.cpp) group=router ;;
    esac
    obj="$OUT/obj/$group/$(basename "$src" .cpp).o"
    "$CLANGXX" "${FLAGS[@]}" -fsanitize=fuzzer-no-link,address,undefined -c "$src" -o "$obj"
    case "$group" in
      chat) chat_objects+=("$obj") ;;
      tokenizer) tokenizer_objects+=("$obj") ;;
      router) router_objects+=("$obj") ;;
      *) model_objects+=("$obj") ;;
    esac
  done
  for t in "${TARGETS[@]}"; do
    libs=(-lsimdjson)
    case "$t" in
      chat_template) objects=("${chat_objects[@]}") ;;
      openai_request) objects=("${router_objects[@]}") ;;
      tokenizer_json)
        objects=("${tokenizer_objects[@]}" "${model_objects[@]}")
        libs+=(-lpcre2-8 -lutf8proc) ;;
      *) objects=("${model_objects[@]}") ;;
    esac
    "$CLANGXX" "${FLAGS[@]}" -fsanitize=fuzzer,address,undefined \
      "$SRC/tests/fuzz/${t}_fuzz.cpp" "${objects[@]}" "${libs[@]}" -o "$OUT/${t}_fuzz"
  done
  "$CLANGXX" "${FLAGS[@]}" -fsanitize=address,undefined \
    "$SRC/tests/fuzz/make_seeds.cpp" "${model_objects[@]}" -lsimdjson -o "$OUT/make_seeds"
  echo "$stamp" > "$OUT/build.stamp"
fi

rm -rf "$OUT/seeds"
mkdir -p "$OUT/seeds/safetensors" "$OUT/seeds/gguf" "$OUT/seeds/tokenizer_json" "$OUT/seeds/chat_template" \
         "$OUT/seeds/openai_request"
"$OUT/make_seeds" "$OUT/seeds/safetensors" "$OUT/seeds/gguf"
cp "$SRC"/tests/fuzz/seeds/tokenizer_json/*.json "$OUT/seeds/tokenizer_json/"
cp "$SRC"/tests/engine/chat/templates/*.jinja "$OUT/seeds/chat_template/"
cp "$SRC"/tests/fuzz/seeds/openai_request/*.json "$OUT/seeds/openai_request/"

export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=0
for t in "${TARGETS[@]}"; do
  # The first corpus folder collects what the fuzzer finds and is kept for the next run.
  mkdir -p "$OUT/corpus/$t"
  log="$OUT/logs/$t.log"
  echo "fuzz: $t for ${SECONDS_PER_TARGET}s"
  if "$OUT/${t}_fuzz" -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
       -timeout=10 -dict="$SRC/tests/fuzz/$t.dict" -artifact_prefix="$OUT/artifacts/$t-" \
       -print_final_stats=1 "$OUT/corpus/$t" "$OUT/seeds/$t" > "$log" 2>&1; then
    grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$log" | tail -n 2 || true
  else
    failed=1
    echo "fuzz: $t FAILED; log $log, inputs under $OUT/artifacts/" >&2
    tail -n 60 "$log" >&2
  fi
done
exit "$failed"
