// Architecture lookup and the config keys shared by the Llama family (HF config.json and GGUF).
#include "engine/model/arch/architecture.hpp"

#include <array>

#include "engine/model/gguf.hpp"
#include "engine/model/json_reader.hpp"

namespace troupe::engine {

namespace {

std::array<const architecture*, 3> all_architectures() {
  return {&llama_architecture(), &mistral_architecture(), &qwen2_architecture()};
}

std::string supported_list() {
  std::string s;
  for (const architecture* a : all_architectures()) s += (s.empty() ? "" : ", ") + std::string(a->hf_class);
  return s;
}

}  // namespace

expected<const architecture*> find_architecture_hf(std::string_view hf_class, std::string_view model_type,
                                                   const std::string& file) {
  for (const architecture* a : all_architectures())
    if ((!hf_class.empty() && a->hf_class == hf_class) || (hf_class.empty() && a->hf_model_type == model_type))
      return a;
  return fail(file + ": unsupported architecture '" + std::string(hf_class.empty() ? model_type : hf_class) +
              "' (supported: " + supported_list() + ")");
}

expected<const architecture*> find_architecture_gguf(std::string_view gguf_arch, const std::string& file) {
  for (const architecture* a : all_architectures())
    if (!a->gguf_arch.empty() && a->gguf_arch == gguf_arch) return a;
  return fail(file + ": unsupported GGUF general.architecture '" + std::string(gguf_arch) +
              "' (supported: llama, qwen2)");
}

expected<model_config> read_hf_common(const json_config& cfg, std::string_view arch) {
  model_config c;
  c.arch = std::string(arch);
#define TROUPE_GET(dst, getter, key, ...)            \
  {                                                  \
    auto v = cfg.getter(key __VA_OPT__(, ) __VA_ARGS__); \
    if (!v) return v.err();                          \
    dst = *v;                                        \
  }
  TROUPE_GET(c.n_layers, get_int, "num_hidden_layers")
  TROUPE_GET(c.dim, get_int, "hidden_size")
  TROUPE_GET(c.n_heads, get_int, "num_attention_heads")
  TROUPE_GET(c.n_kv_heads, get_int, "num_key_value_heads", c.n_heads)
  TROUPE_GET(c.ffn_dim, get_int, "intermediate_size")
  TROUPE_GET(c.vocab_size, get_int, "vocab_size")
  TROUPE_GET(c.max_position, get_int, "max_position_embeddings", 2048)
  double eps = 0, theta = 0;
  TROUPE_GET(eps, get_float, "rms_norm_eps", 1e-6)
  TROUPE_GET(theta, get_float, "rope_theta", 10000.0)
  TROUPE_GET(c.tied_embeddings, get_bool, "tie_word_embeddings", false)
  if (c.n_heads > 0) TROUPE_GET(c.head_dim, get_int, "head_dim", c.dim / c.n_heads)
  c.rms_eps = float(eps);
  c.rope_theta = float(theta);
  if (cfg.has("bos_token_id")) {
    int64_t bos = 0;
    TROUPE_GET(bos, get_int, "bos_token_id")
    c.bos_token_id = int32_t(bos);
  }
  // eos_token_id is an integer or (Llama 3.1) a list; a list is read by the tokenizer side instead.
  if (auto eos = cfg.get_int("eos_token_id", -1); eos && *eos >= 0) c.eos_token_ids.push_back(int32_t(*eos));
#undef TROUPE_GET
  if (cfg.has("hidden_act")) {
    auto act = cfg.get_string("hidden_act");
    if (!act) return act.err();
    if (*act != "silu") return fail(cfg.file() + ": hidden_act '" + *act + "' is not supported (only silu)");
  }
  return c;
}

expected<model_config> read_gguf_common(const gguf_file& f, std::string_view gguf_arch, std::string_view arch) {
  model_config c;
  c.arch = std::string(arch);
  const std::string a(gguf_arch);
  auto get_int = [&f, &a](const char* key, std::optional<int64_t> fallback) -> expected<int64_t> {
    const std::string k = a + "." + key;
    if (!f.get(k) && fallback) return *fallback;
    return f.get_int(k);
  };
  auto get_float = [&f, &a](const char* key, double fallback) -> expected<double> {
    const std::string k = a + "." + key;
    if (!f.get(k)) return fallback;
    return f.get_float(k);
  };
#define TROUPE_GET(dst, expr) \
  {                           \
    auto v = expr;            \
    if (!v) return v.err();   \
    dst = *v;                 \
  }
  TROUPE_GET(c.n_layers, get_int("block_count", std::nullopt))
  TROUPE_GET(c.dim, get_int("embedding_length", std::nullopt))
  TROUPE_GET(c.ffn_dim, get_int("feed_forward_length", std::nullopt))
  TROUPE_GET(c.n_heads, get_int("attention.head_count", std::nullopt))
  TROUPE_GET(c.n_kv_heads, get_int("attention.head_count_kv", c.n_heads))
  TROUPE_GET(c.max_position, get_int("context_length", 2048))
  if (c.n_heads > 0) TROUPE_GET(c.head_dim, get_int("attention.key_length", c.dim / c.n_heads))
  double eps = 0, theta = 0;
  TROUPE_GET(eps, get_float("attention.layer_norm_rms_epsilon", 1e-5))
  TROUPE_GET(theta, get_float("rope.freq_base", 10000.0))
#undef TROUPE_GET
  c.rms_eps = float(eps);
  c.rope_theta = float(theta);
  // The vocabulary size comes from the embedding tensor (llama.cpp does the same).
  if (const tensor_view* emb = f.find("token_embd.weight"); emb && emb->shape.size() == 2)
    c.vocab_size = emb->shape[0];
  c.tied_embeddings = f.find("output.weight") == nullptr;
  if (f.get("tokenizer.ggml.bos_token_id"))
    if (auto bos = f.get_int("tokenizer.ggml.bos_token_id")) c.bos_token_id = int32_t(*bos);
  if (f.get("tokenizer.ggml.eos_token_id"))
    if (auto eos = f.get_int("tokenizer.ggml.eos_token_id")) c.eos_token_ids.push_back(int32_t(*eos));
  return c;
}

}  // namespace troupe::engine
