// One Llama-family architecture: how its Hugging Face config.json and GGUF metadata map onto
// model_config. One file per architecture (llama.cpp, mistral.cpp, qwen2.cpp) defines one of these.
#pragma once

#include <span>
#include <string_view>

#include "common/expected.hpp"
#include "engine/model/model_config.hpp"

namespace troupe::engine {

class json_config;
struct gguf_file;

struct architecture {
  std::string_view name;           // canonical name, model_config::arch
  std::string_view hf_class;       // config.json "architectures"[0], e.g. "LlamaForCausalLM"
  std::string_view hf_model_type;  // config.json "model_type"
  std::string_view gguf_arch;      // GGUF general.architecture ("" when stored as another arch)
  bool gguf_permutes_qk;           // llama.cpp's converter permuted q/k rows (interleaved rotary)
  expected<model_config> (*from_hf)(const json_config& cfg);
  expected<model_config> (*from_gguf)(const gguf_file& file);
};

const architecture& llama_architecture();
const architecture& mistral_architecture();
const architecture& qwen2_architecture();

// The supported architectures, wired explicitly (no registry).
[[nodiscard]] expected<const architecture*> find_architecture_hf(std::string_view hf_class,
                                                                 std::string_view model_type,
                                                                 const std::string& file);
[[nodiscard]] expected<const architecture*> find_architecture_gguf(std::string_view gguf_arch,
                                                                   const std::string& file);

// Readers of the keys every Llama-family config shares; the architecture files refine the result.
[[nodiscard]] expected<model_config> read_hf_common(const json_config& cfg, std::string_view arch);
[[nodiscard]] expected<model_config> read_gguf_common(const gguf_file& file, std::string_view gguf_arch,
                                                      std::string_view arch);

}  // namespace troupe::engine
