// load_model: maps an HF safetensors folder or a GGUF file and binds every weight of the
// Llama-family layout, checking presence, dtype and shape against the config.
#include <simdjson.h>

#include <filesystem>
#include <functional>
#include <map>

#include "engine/model/arch/architecture.hpp"
#include "engine/model/gguf.hpp"
#include "engine/model/json_reader.hpp"
#include "engine/model/model.hpp"
#include "engine/model/safetensors.hpp"

namespace troupe::engine {

namespace fs = std::filesystem;

std::vector<std::span<const std::byte>> model::decode_weight_spans() const {
  std::vector<std::span<const std::byte>> spans;
  for (const layer_weights& l : weights.layers)
    for (const tensor_view* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
      spans.emplace_back(t->data, t->nbytes);
  spans.emplace_back(weights.output.data, weights.output.nbytes);
  return spans;
}

size_t model::decode_weight_bytes() const {
  size_t total = 0;
  for (const auto& s : decode_weight_spans()) total += s.size();
  return total;
}

namespace {

using tensor_lookup = std::function<const tensor_view*(const std::string&)>;

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// Binds one tensor, checking its shape and that its dtype is usable for its role.
class binder {
 public:
  binder(tensor_lookup lookup, std::string source) : lookup_(std::move(lookup)), source_(std::move(source)) {}

  expected<tensor_view> bind(const std::string& name, std::vector<int64_t> shape, bool matrix) const {
    const tensor_view* t = lookup_(name);
    if (!t) return fail(source_ + ": tensor '" + name + "' is missing");
    if (t->shape != shape)
      return fail(source_ + ": tensor '" + name + "' has shape " + shape_str(t->shape) + ", expected " +
                  shape_str(shape));
    if (!matrix && t->type == dtype::q8_0)
      return fail(source_ + ": tensor '" + name + "' is q8_0; norms and biases must be f32, f16 or bf16");
    return *t;
  }

  expected<std::optional<tensor_view>> bind_optional(const std::string& name, std::vector<int64_t> shape) const {
    if (!lookup_(name)) return std::optional<tensor_view>{};
    auto t = bind(name, std::move(shape), false);
    if (!t) return t.err();
    return std::optional<tensor_view>{*t};
  }

 private:
  tensor_lookup lookup_;
  std::string source_;
};

// Tensor names of the two formats for one layer.
struct layer_names {
  std::string attn_norm, wq, wk, wv, bq, bk, bv, wo, ffn_norm, w_gate, w_up, w_down;
};

layer_names hf_layer_names(int64_t i) {
  const std::string p = "model.layers." + std::to_string(i) + ".";
  return {p + "input_layernorm.weight", p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight",
          p + "self_attn.v_proj.weight", p + "self_attn.q_proj.bias",   p + "self_attn.k_proj.bias",
          p + "self_attn.v_proj.bias",   p + "self_attn.o_proj.weight", p + "post_attention_layernorm.weight",
          p + "mlp.gate_proj.weight",    p + "mlp.up_proj.weight",      p + "mlp.down_proj.weight"};
}

layer_names gguf_layer_names(int64_t i) {
  const std::string p = "blk." + std::to_string(i) + ".";
  return {p + "attn_norm.weight", p + "attn_q.weight",      p + "attn_k.weight",   p + "attn_v.weight",
          p + "attn_q.bias",      p + "attn_k.bias",        p + "attn_v.bias",     p + "attn_output.weight",
          p + "ffn_norm.weight",  p + "ffn_gate.weight",    p + "ffn_up.weight",   p + "ffn_down.weight"};
}

struct global_names {
  std::string embd, norm, output;
};

expected<model_weights> bind_weights(const model_config& c, const binder& b, const global_names& g,
                                     const std::function<layer_names(int64_t)>& names) {
  model_weights w;
#define TROUPE_BIND(dst, expr) \
  {                            \
    auto v = expr;             \
    if (!v) return v.err();    \
    dst = *v;                  \
  }
  TROUPE_BIND(w.tok_embd, b.bind(g.embd, {c.vocab_size, c.dim}, true))
  TROUPE_BIND(w.output_norm, b.bind(g.norm, {c.dim}, false))
  if (c.tied_embeddings) {
    w.output = w.tok_embd;
  } else {
    TROUPE_BIND(w.output, b.bind(g.output, {c.vocab_size, c.dim}, true))
  }
  w.layers.resize(size_t(c.n_layers));
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const layer_names n = names(i);
    layer_weights& l = w.layers[size_t(i)];
    TROUPE_BIND(l.attn_norm, b.bind(n.attn_norm, {c.dim}, false))
    TROUPE_BIND(l.wq, b.bind(n.wq, {c.q_dim(), c.dim}, true))
    TROUPE_BIND(l.wk, b.bind(n.wk, {c.kv_dim(), c.dim}, true))
    TROUPE_BIND(l.wv, b.bind(n.wv, {c.kv_dim(), c.dim}, true))
    TROUPE_BIND(l.wo, b.bind(n.wo, {c.dim, c.q_dim()}, true))
    TROUPE_BIND(l.ffn_norm, b.bind(n.ffn_norm, {c.dim}, false))
    TROUPE_BIND(l.w_gate, b.bind(n.w_gate, {c.ffn_dim, c.dim}, true))
    TROUPE_BIND(l.w_up, b.bind(n.w_up, {c.ffn_dim, c.dim}, true))
    TROUPE_BIND(l.w_down, b.bind(n.w_down, {c.dim, c.ffn_dim}, true))
    if (c.qkv_bias) {
      TROUPE_BIND(l.bq, b.bind(n.bq, {c.q_dim()}, false))
      TROUPE_BIND(l.bk, b.bind(n.bk, {c.kv_dim()}, false))
      TROUPE_BIND(l.bv, b.bind(n.bv, {c.kv_dim()}, false))
    }
  }
#undef TROUPE_BIND
  return w;
}

expected<std::string> read_chat_template(const fs::path& dir) {
  const fs::path p = dir / "tokenizer_config.json";
  if (!fs::exists(p)) return std::string();
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto e = parser.load(p.string()).get(doc); e != simdjson::SUCCESS)
    return fail(p.string() + ": invalid JSON: " + simdjson::error_message(e));
  std::string_view t;
  if (doc["chat_template"].get_string().get(t) == simdjson::SUCCESS) return std::string(t);
  return std::string();  // absent, or a list of named templates (handled by the chat-template issue)
}

expected<std::shared_ptr<const model>> load_hf(const fs::path& dir, load_mode mode) {
  auto m = std::make_shared<model>();
  m->path = dir.string();
  m->format = model_format::hf_safetensors;
  const std::string config_path = (dir / "config.json").string();
  if (!fs::exists(config_path)) return fail(dir.string() + ": no config.json (not a Hugging Face model folder)");
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto e = parser.load(config_path).get(doc); e != simdjson::SUCCESS)
    return fail(config_path + ": invalid JSON: " + simdjson::error_message(e));
  simdjson::dom::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS) return fail(config_path + ": not a JSON object");
  json_config cfg(obj, config_path);

  std::string_view hf_class;
  simdjson::dom::array archs;
  if (obj["architectures"].get_array().get(archs) == simdjson::SUCCESS && archs.size() > 0)
    if (archs.at(0).get_string().get(hf_class) != simdjson::SUCCESS) hf_class = {};
  auto model_type = cfg.get_string("model_type", std::string());
  if (!model_type) return model_type.err();
  auto arch = find_architecture_hf(hf_class, *model_type, config_path);
  if (!arch) return arch.err();
  auto config = (*arch)->from_hf(cfg);
  if (!config) return config.err();
  m->config = std::move(*config);
  if (auto problem = check_config(m->config, config_path)) return fail(*problem);

  // Weights: one file, or shards listed by the index's weight_map.
  std::map<std::string, std::shared_ptr<safetensors_file>> shards;  // by file name
  std::map<std::string, std::string> weight_map;                     // tensor -> file name
  const fs::path index_path = dir / "model.safetensors.index.json";
  if (fs::exists(index_path)) {
    simdjson::dom::parser ip;
    simdjson::dom::element idx;
    if (auto e = ip.load(index_path.string()).get(idx); e != simdjson::SUCCESS)
      return fail(index_path.string() + ": invalid JSON: " + simdjson::error_message(e));
    simdjson::dom::object map;
    if (idx["weight_map"].get_object().get(map) != simdjson::SUCCESS)
      return fail(index_path.string() + ": key 'weight_map' is missing or not an object");
    for (auto [key, value] : map) {
      std::string_view file;
      if (value.get_string().get(file) != simdjson::SUCCESS)
        return fail(index_path.string() + ": weight_map entry '" + std::string(key) + "' is not a string");
      const fs::path fp(file);
      if (fp.has_parent_path() || fp.is_absolute() || file == ".." || file == ".")
        return fail(index_path.string() + ": weight_map entry '" + std::string(key) + "' names '" +
                    std::string(file) + "', which is not a file in the model folder");
      weight_map.emplace(std::string(key), std::string(file));
      shards.emplace(std::string(file), nullptr);
    }
  } else {
    if (!fs::exists(dir / "model.safetensors"))
      return fail(dir.string() + ": neither model.safetensors nor model.safetensors.index.json found");
    shards.emplace("model.safetensors", nullptr);
  }
  for (auto& [file, shard] : shards) {
    auto st = open_safetensors((dir / file).string(), mode);
    if (!st) return st.err();
    shard = std::make_shared<safetensors_file>(std::move(*st));
    m->files.push_back(shard);
  }
  tensor_lookup lookup = [&shards, &weight_map](const std::string& name) -> const tensor_view* {
    if (weight_map.empty()) return shards.begin()->second->find(name);
    auto it = weight_map.find(name);
    if (it == weight_map.end()) return nullptr;
    return shards.at(it->second)->find(name);
  };
  // A tied model may still ship lm_head.weight; config.json decides.
  auto weights = bind_weights(m->config, binder(lookup, dir.string()),
                              {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"}, hf_layer_names);
  if (!weights) return weights.err();
  m->weights = std::move(*weights);
  auto tmpl = read_chat_template(dir);
  if (!tmpl) return tmpl.err();
  m->chat_template = std::move(*tmpl);
  return std::shared_ptr<const model>(std::move(m));
}

expected<std::shared_ptr<const model>> load_gguf(const fs::path& path, load_mode mode) {
  auto g = open_gguf(path.string(), mode);
  if (!g) return g.err();
  auto file = std::make_shared<gguf_file>(std::move(*g));
  auto m = std::make_shared<model>();
  m->path = path.string();
  m->format = model_format::gguf;
  m->files.push_back(file);
  m->gguf = file;
  auto arch_name = file->get_string("general.architecture");
  if (!arch_name) return fail(path.string() + ": " + arch_name.message());
  auto arch = find_architecture_gguf(*arch_name, path.string());
  if (!arch) return arch.err();
  auto config = (*arch)->from_gguf(*file);
  if (!config) return fail(path.string() + ": " + config.message());
  m->config = std::move(*config);
  m->config.rope_interleaved = (*arch)->gguf_permutes_qk;
  if (auto problem = check_config(m->config, path.string())) return fail(*problem);
  tensor_lookup lookup = [&file](const std::string& name) { return file->find(name); };
  auto weights = bind_weights(m->config, binder(lookup, path.string()),
                              {"token_embd.weight", "output_norm.weight", "output.weight"}, gguf_layer_names);
  if (!weights) return weights.err();
  m->weights = std::move(*weights);
  if (const tensor_view* rf = file->find("rope_freqs.weight")) {
    if (rf->type != dtype::f32 || rf->shape != std::vector<int64_t>{m->config.head_dim / 2})
      return fail(path.string() + ": tensor 'rope_freqs.weight' must be f32 of shape [" +
                  std::to_string(m->config.head_dim / 2) + "]");
    const float* f = reinterpret_cast<const float*>(rf->data);
    m->weights.rope_freq_factors.assign(f, f + m->config.head_dim / 2);
    for (float x : m->weights.rope_freq_factors)
      if (!(x > 0.0f)) return fail(path.string() + ": tensor 'rope_freqs.weight' has a non-positive factor");
  }
  if (file->get("tokenizer.chat_template")) {
    auto t = file->get_string("tokenizer.chat_template");
    if (!t) return fail(path.string() + ": " + t.message());
    m->chat_template = *t;
  }
  return std::shared_ptr<const model>(std::move(m));
}

}  // namespace

expected<std::shared_ptr<const model>> load_model(const std::string& path, load_mode mode) {
  std::error_code ec;
  const fs::path p(path);
  if (fs::is_directory(p, ec)) return load_hf(p, mode);
  if (fs::is_regular_file(p, ec)) {
    if (p.extension() == ".gguf") return load_gguf(p, mode);
    if (p.filename() == "config.json") return load_hf(p.parent_path(), mode);
    return fail(path + ": not a .gguf file or a Hugging Face model folder");
  }
  return fail(path + ": no such file or folder");
}

}  // namespace troupe::engine
