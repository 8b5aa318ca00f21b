// `troupe model make-tiny`: writes a small random-weight Llama-family model as a complete Hugging
// Face folder (config.json, safetensors, a trained byte-level BPE tokenizer.json,
// tokenizer_config.json with a chat template) and optionally the same weights as a GGUF file.
// It is the default model of `troupe up`, the README and the tests.
#pragma once

#include <cstdint>
#include <string>

#include "common/expected.hpp"
#include "engine/model/dtype.hpp"

namespace troupe::engine {

struct tiny_model_spec {
  std::string arch = "llama";      // llama | mistral | qwen2
  int64_t layers = 4;
  int64_t dim = 256;
  int64_t heads = 8;
  int64_t kv_heads = 4;
  int64_t ffn = 704;
  int64_t vocab = 2048;
  int64_t max_position = 4096;
  float rope_theta = 10000.0f;
  bool rope_scaling_llama3 = false; // write a Llama 3.1 rope_scaling block
  bool tied = false;                // tie_word_embeddings
  dtype type = dtype::f32;          // HF weights: f32, f16 or bf16
  uint64_t seed = 0;
  int shards = 1;                   // > 1: sharded safetensors with an index
  std::string gguf_path;            // also write a GGUF file when non-empty
  dtype gguf_type = dtype::f32;     // f32, f16, bf16 or q8_0 (matrices; norms stay f32)
};

// Checks the spec (sizes, divisibility, dtypes); the error names the option.
[[nodiscard]] expected<void> validate(const tiny_model_spec& spec);

// Writes the model into `out_dir` (created if needed).
[[nodiscard]] expected<void> make_tiny_model(const tiny_model_spec& spec, const std::string& out_dir);

}  // namespace troupe::engine
