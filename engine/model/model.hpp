// A loaded Llama-family model: its config and views of every weight, memory-mapped from an HF
// folder (config.json + one or more safetensors) or a GGUF file; plus the model's chat template.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/expected.hpp"
#include "engine/model/mapped_file.hpp"
#include "engine/model/model_config.hpp"
#include "engine/model/tensor_view.hpp"

namespace troupe::engine {

struct layer_weights {
  tensor_view attn_norm;                   // [dim]
  tensor_view wq, wk, wv;                  // [q_dim, dim], [kv_dim, dim], [kv_dim, dim]
  std::optional<tensor_view> bq, bk, bv;   // [q_dim], [kv_dim], [kv_dim] (Qwen2)
  tensor_view wo;                          // [dim, q_dim]
  tensor_view ffn_norm;                    // [dim]
  tensor_view w_gate, w_up;                // [ffn_dim, dim]
  tensor_view w_down;                      // [dim, ffn_dim]
};

struct model_weights {
  tensor_view tok_embd;                    // [vocab, dim]
  std::vector<layer_weights> layers;
  tensor_view output_norm;                 // [dim]
  tensor_view output;                      // [vocab, dim]; the embedding when tied
  std::vector<float> rope_freq_factors;    // GGUF rope_freqs.weight (Llama 3.1), else empty
};

enum class model_format { hf_safetensors, gguf };

struct gguf_file;

struct model {
  std::string path;                        // the folder or file it came from
  model_format format = model_format::hf_safetensors;
  model_config config;
  model_weights weights;
  std::string chat_template;               // Jinja source, empty when the model has none
  std::vector<std::shared_ptr<const void>> files;  // keep the mappings behind the views alive
  std::shared_ptr<const gguf_file> gguf;   // the parsed GGUF file (its metadata holds the tokenizer)

  // The weight data a decode step reads: every matrix once (the embedding row is negligible).
  [[nodiscard]] std::vector<std::span<const std::byte>> decode_weight_spans() const;
  [[nodiscard]] size_t decode_weight_bytes() const;
};

// Loads a model from an HF folder (config.json + model.safetensors, or sharded with
// model.safetensors.index.json) or a .gguf file. Checks every tensor's presence, dtype and shape
// against the config; errors name the file, the tensor or key, and what was wrong. `mode` map keeps
// the weights in the page cache (no copy); read copies them into huge-page-backed memory.
[[nodiscard]] expected<std::shared_ptr<const model>> load_model(const std::string& path,
                                                                load_mode mode = load_mode::map);

}  // namespace troupe::engine
