// Qwen2 / Qwen2.5: the Llama layout with biases on the q/k/v projections; rotary in the NeoX
// (half-split) layout in both formats, so llama.cpp does not permute its q/k rows.
#include "engine/model/arch/architecture.hpp"
#include "engine/model/gguf.hpp"
#include "engine/model/json_reader.hpp"

namespace troupe::engine {

namespace {

expected<model_config> qwen2_from_hf(const json_config& cfg) {
  auto c = read_hf_common(cfg, "qwen2");
  if (!c) return c;
  c->qkv_bias = true;
  auto sliding = cfg.get_bool("use_sliding_window", false);
  if (!sliding) return sliding.err();
  if (*sliding) return fail(cfg.file() + ": use_sliding_window = true is not supported");
  return c;
}

expected<model_config> qwen2_from_gguf(const gguf_file& f) {
  auto c = read_gguf_common(f, "qwen2", "qwen2");
  if (c) c->qkv_bias = true;
  return c;
}

}  // namespace

const architecture& qwen2_architecture() {
  static const architecture a{"qwen2", "Qwen2ForCausalLM", "qwen2", "qwen2", false, qwen2_from_hf, qwen2_from_gguf};
  return a;
}

}  // namespace troupe::engine
