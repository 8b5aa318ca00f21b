// The hyper-parameters of a Llama-family model, read from a Hugging Face config.json or from GGUF
// metadata; everything the forward pass needs to know about the shapes and the rotary embedding.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace troupe::engine {

// Llama 3.1 "rope_scaling": {"rope_type": "llama3", ...}: long wavelengths are slowed by `factor`,
// short ones kept, with a smooth ramp between low_freq_factor and high_freq_factor.
struct rope_scaling_llama3 {
  float factor = 8.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int64_t original_max_position = 8192;
};

struct model_config {
  std::string arch;             // canonical architecture name: "llama", "mistral", "qwen2"
  int64_t n_layers = 0;
  int64_t dim = 0;              // hidden size
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;       // < n_heads: grouped-query attention
  int64_t head_dim = 0;         // usually dim / n_heads
  int64_t ffn_dim = 0;          // intermediate size
  int64_t vocab_size = 0;
  int64_t max_position = 0;     // context length the engine allows (capped by a sliding window)
  float rms_eps = 1e-5f;
  float rope_theta = 10000.0f;
  std::optional<rope_scaling_llama3> rope_scaling;
  bool tied_embeddings = false; // output projection reuses the token embedding
  bool qkv_bias = false;        // q/k/v projections have biases (Qwen2)
  // Rotary pairs are (2i, 2i+1) rather than (i, i + head_dim/2): true for GGUF files whose q/k rows
  // llama.cpp's converter permuted. Same outputs for the same weights either way.
  bool rope_interleaved = false;
  std::optional<int32_t> bos_token_id;
  std::vector<int32_t> eos_token_ids;

  [[nodiscard]] int64_t q_dim() const { return n_heads * head_dim; }
  [[nodiscard]] int64_t kv_dim() const { return n_kv_heads * head_dim; }
};

// Checks the shape relations (positive sizes, heads divide, head_dim even, ...); the error names the
// field, its value and `source` (the file it came from).
[[nodiscard]] std::optional<std::string> check_config(const model_config& c, const std::string& source);

// inv_freq[head_dim/2] for the rotary embedding: theta^(-2i/head_dim), with llama3 scaling applied
// when configured, and divided by `freq_factors` when given (GGUF's rope_freqs tensor).
[[nodiscard]] std::vector<float> rope_inv_freq(const model_config& c,
                                               const std::vector<float>* freq_factors = nullptr);

}  // namespace troupe::engine
