// Llama 2 / 3 / 3.1 / 3.2: grouped-query attention, rope_theta, llama3 rope scaling, tied embeddings.
#include "engine/model/arch/architecture.hpp"
#include "engine/model/gguf.hpp"
#include "engine/model/json_reader.hpp"

namespace troupe::engine {

namespace {

expected<model_config> llama_from_hf(const json_config& cfg) {
  auto c = read_hf_common(cfg, "llama");
  if (!c) return c;
  auto bias = cfg.get_bool("attention_bias", false);
  if (!bias) return bias.err();
  c->qkv_bias = *bias;
  if (auto mlp_bias = cfg.get_bool("mlp_bias", false); !mlp_bias || *mlp_bias)
    return fail(cfg.file() + ": mlp_bias = true is not supported");
  auto scaling = cfg.get_object("rope_scaling");
  if (!scaling) return scaling.err();
  if (*scaling) {
    const json_config& s = **scaling;
    auto type = s.get_string("rope_type", std::string());
    if (!type) return type.err();
    if (type->empty()) {
      type = s.get_string("type", std::string());
      if (!type) return type.err();
    }
    if (*type == "llama3") {
      rope_scaling_llama3 r;
      auto f = s.get_float("factor");
      auto lo = s.get_float("low_freq_factor", 1.0);
      auto hi = s.get_float("high_freq_factor", 4.0);
      auto orig = s.get_int("original_max_position_embeddings", 8192);
      if (!f) return f.err();
      if (!lo) return lo.err();
      if (!hi) return hi.err();
      if (!orig) return orig.err();
      r.factor = float(*f);
      r.low_freq_factor = float(*lo);
      r.high_freq_factor = float(*hi);
      r.original_max_position = *orig;
      c->rope_scaling = r;
    } else if (*type != "default") {
      return fail(cfg.file() + ": rope_scaling type '" + *type + "' is not supported (supported: llama3)");
    }
  }
  return c;
}

expected<model_config> llama_from_gguf(const gguf_file& f) {
  // Llama 3.1 scaling arrives in GGUF as the rope_freqs.weight tensor; the loader applies it.
  return read_gguf_common(f, "llama", "llama");
}

}  // namespace

const architecture& llama_architecture() {
  static const architecture a{"llama", "LlamaForCausalLM", "llama", "llama", true, llama_from_hf, llama_from_gguf};
  return a;
}

}  // namespace troupe::engine
