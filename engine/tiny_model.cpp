// make_tiny_model: random weights with a fixed seed, written in both checkpoint formats.
#include "engine/tiny_model.hpp"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "common/json_escape.hpp"
#include "engine/model/gguf.hpp"
#include "engine/model/model_config.hpp"
#include "engine/model/safetensors.hpp"
#include "engine/tokenizer/tokenizer.hpp"

namespace troupe::engine {

namespace fs = std::filesystem;

namespace {

// A tensor kept in f32 until it is written in the requested dtype.
struct f32_tensor {
  std::string hf_name;
  std::string gguf_name;
  std::vector<int64_t> shape;
  std::vector<float> values;
  bool is_matrix;
};

std::vector<std::byte> encode(const std::vector<float>& v, dtype t) {
  std::vector<std::byte> out;
  switch (t) {
    case dtype::f32:
      out.resize(v.size() * 4);
      std::memcpy(out.data(), v.data(), out.size());
      break;
    case dtype::f16:
    case dtype::bf16: {
      out.resize(v.size() * 2);
      for (size_t i = 0; i < v.size(); ++i) {
        const uint16_t h = t == dtype::f16 ? f32_to_f16(v[i]) : f32_to_bf16(v[i]);
        std::memcpy(out.data() + 2 * i, &h, 2);
      }
      break;
    }
    case dtype::q8_0: {  // callers guarantee v.size() % 32 == 0 (rows are multiples of 32)
      const size_t blocks = v.size() / size_t(q8_0_block);
      out.resize(blocks * sizeof(block_q8_0));
      for (size_t b = 0; b < blocks; ++b) {
        const float* x = v.data() + b * size_t(q8_0_block);
        float amax = 0;
        for (int i = 0; i < q8_0_block; ++i) amax = std::max(amax, std::fabs(x[i]));
        const float d = amax / 127.0f;
        const float id = d > 0 ? 1.0f / d : 0.0f;
        block_q8_0 blk;
        blk.d = f32_to_f16(d);
        for (int i = 0; i < q8_0_block; ++i) blk.qs[i] = int8_t(std::lround(x[i] * id));
        std::memcpy(out.data() + b * sizeof(block_q8_0), &blk, sizeof blk);
      }
      break;
    }
  }
  return out;
}

// llama.cpp's converter reorders each head's q/k rows so that rotary pairs become adjacent:
// GGUF row (2i + t) of a head is HF row (t * head_dim/2 + i).
std::vector<float> permute_qk(const std::vector<float>& w, int64_t n_heads, int64_t head_dim, int64_t cols) {
  std::vector<float> out(w.size());
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t t = 0; t < 2; ++t) {
        const int64_t dst = h * head_dim + 2 * i + t;
        const int64_t src = h * head_dim + t * half + i;
        std::memcpy(out.data() + dst * cols, w.data() + src * cols, size_t(cols) * sizeof(float));
      }
  return out;
}

model_config config_of(const tiny_model_spec& s) {
  model_config c;
  c.arch = s.arch;
  c.n_layers = s.layers;
  c.dim = s.dim;
  c.n_heads = s.heads;
  c.n_kv_heads = s.kv_heads;
  c.head_dim = s.heads > 0 ? s.dim / s.heads : 0;
  c.ffn_dim = s.ffn;
  c.vocab_size = s.vocab;
  c.max_position = s.max_position;
  c.rope_theta = s.rope_theta;
  c.rms_eps = 1e-5f;
  if (s.rope_scaling_llama3) c.rope_scaling = rope_scaling_llama3{8.0f, 1.0f, 4.0f, std::max<int64_t>(s.max_position / 8, 64)};
  return c;
}

std::vector<f32_tensor> random_weights(const tiny_model_spec& s, const model_config& c) {
  std::mt19937_64 rng(s.seed);
  // Uniform in +-sqrt(3/fan_in): unit-variance outputs, so activations stay in range over layers.
  auto matrix = [&rng](std::string hf, std::string gg, int64_t rows, int64_t cols) {
    std::uniform_real_distribution<float> u(-std::sqrt(3.0f / float(cols)), std::sqrt(3.0f / float(cols)));
    f32_tensor t{std::move(hf), std::move(gg), {rows, cols}, std::vector<float>(size_t(rows * cols)), true};
    for (float& x : t.values) x = u(rng);
    return t;
  };
  auto vec = [&rng](std::string hf, std::string gg, int64_t n, float center, float spread) {
    std::uniform_real_distribution<float> u(center - spread, center + spread);
    f32_tensor t{std::move(hf), std::move(gg), {n}, std::vector<float>(size_t(n)), false};
    for (float& x : t.values) x = u(rng);
    return t;
  };
  std::vector<f32_tensor> w;
  w.push_back(matrix("model.embed_tokens.weight", "token_embd.weight", c.vocab_size, c.dim));
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const std::string h = "model.layers." + std::to_string(i) + ".";
    const std::string g = "blk." + std::to_string(i) + ".";
    w.push_back(vec(h + "input_layernorm.weight", g + "attn_norm.weight", c.dim, 1.0f, 0.2f));
    w.push_back(matrix(h + "self_attn.q_proj.weight", g + "attn_q.weight", c.q_dim(), c.dim));
    w.push_back(matrix(h + "self_attn.k_proj.weight", g + "attn_k.weight", c.kv_dim(), c.dim));
    w.push_back(matrix(h + "self_attn.v_proj.weight", g + "attn_v.weight", c.kv_dim(), c.dim));
    if (s.arch == "qwen2") {
      w.push_back(vec(h + "self_attn.q_proj.bias", g + "attn_q.bias", c.q_dim(), 0.0f, 0.5f));
      w.push_back(vec(h + "self_attn.k_proj.bias", g + "attn_k.bias", c.kv_dim(), 0.0f, 0.5f));
      w.push_back(vec(h + "self_attn.v_proj.bias", g + "attn_v.bias", c.kv_dim(), 0.0f, 0.5f));
    }
    w.push_back(matrix(h + "self_attn.o_proj.weight", g + "attn_output.weight", c.dim, c.q_dim()));
    w.push_back(vec(h + "post_attention_layernorm.weight", g + "ffn_norm.weight", c.dim, 1.0f, 0.2f));
    w.push_back(matrix(h + "mlp.gate_proj.weight", g + "ffn_gate.weight", c.ffn_dim, c.dim));
    w.push_back(matrix(h + "mlp.up_proj.weight", g + "ffn_up.weight", c.ffn_dim, c.dim));
    w.push_back(matrix(h + "mlp.down_proj.weight", g + "ffn_down.weight", c.dim, c.ffn_dim));
  }
  w.push_back(vec("model.norm.weight", "output_norm.weight", c.dim, 1.0f, 0.2f));
  if (!s.tied) w.push_back(matrix("lm_head.weight", "output.weight", c.vocab_size, c.dim));
  return w;
}

struct family {
  std::vector<std::string> specials;
  std::string bos, eos;
  bool add_bos;
  std::string chat_template;
  tokenizer_style style = tokenizer_style::llama3;
};

// Each architecture's tokenizer layout as its real checkpoints ship it: Llama 3's (byte-level,
// its regex, ignore_merges), specials and template for llama; Mistral's SentencePiece vocabulary
// (<s>, </s>, [INST]) and template for mistral; Qwen2's (NFC, its regex) with ChatML for qwen2.
family family_of(const std::string& arch) {
  if (arch == "mistral")
    return {{"[INST]", "[/INST]"},
            "<s>",
            "</s>",
            true,
            "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
            "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
            "{{ message['content'] + eos_token }}{% endif %}{% endfor %}",
            tokenizer_style::sentencepiece};
  if (arch == "qwen2")
    return {{"<|endoftext|>", "<|im_start|>", "<|im_end|>"},
            "",
            "<|im_end|>",
            false,
            "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
            "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
            tokenizer_style::qwen2};
  return {{"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"},
          "<|begin_of_text|>",
          "<|eot_id|>",
          true,
          "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
          "'<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"};
}

expected<void> write_text(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
  f.close();
  if (!f) return fail(p.string() + ": cannot write");
  return {};
}

std::string hf_config_json(const tiny_model_spec& s, const model_config& c, int32_t bos, int32_t eos) {
  static const std::map<std::string, std::string> classes = {
      {"llama", "LlamaForCausalLM"}, {"mistral", "MistralForCausalLM"}, {"qwen2", "Qwen2ForCausalLM"}};
  std::string j = "{\n";
  auto kv = [&j](const std::string& k, const std::string& v) { j += "  " + json_string(k) + ": " + v + ",\n"; };
  kv("architectures", "[" + json_string(classes.at(s.arch)) + "]");
  kv("model_type", json_string(s.arch));
  kv("hidden_size", std::to_string(c.dim));
  kv("intermediate_size", std::to_string(c.ffn_dim));
  kv("num_hidden_layers", std::to_string(c.n_layers));
  kv("num_attention_heads", std::to_string(c.n_heads));
  kv("num_key_value_heads", std::to_string(c.n_kv_heads));
  kv("head_dim", std::to_string(c.head_dim));
  kv("vocab_size", std::to_string(c.vocab_size));
  kv("max_position_embeddings", std::to_string(c.max_position));
  kv("rms_norm_eps", "1e-05");
  char theta[32];
  std::snprintf(theta, sizeof theta, "%.1f", double(c.rope_theta));
  kv("rope_theta", theta);
  if (c.rope_scaling)
    kv("rope_scaling", "{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, "
                       "\"high_freq_factor\": 4.0, \"original_max_position_embeddings\": " +
                           std::to_string(c.rope_scaling->original_max_position) + "}");
  kv("hidden_act", "\"silu\"");
  kv("tie_word_embeddings", s.tied ? "true" : "false");
  kv("torch_dtype", json_string(s.type == dtype::f32 ? "float32" : s.type == dtype::f16 ? "float16" : "bfloat16"));
  if (bos >= 0) kv("bos_token_id", std::to_string(bos));
  kv("eos_token_id", std::to_string(eos));
  j += "  \"transformers_version\": \"4.46.0\"\n}\n";
  return j;
}

}  // namespace

expected<void> validate(const tiny_model_spec& s) {
  if (s.arch != "llama" && s.arch != "mistral" && s.arch != "qwen2")
    return fail("--arch must be llama, mistral or qwen2, got '" + s.arch + "'");
  if (s.layers < 1 || s.layers > 256) return fail("--layers must be in [1, 256]");
  if (s.heads < 1 || s.dim % s.heads != 0) return fail("--heads must divide --dim");
  if ((s.dim / s.heads) % 2 != 0) return fail("--dim / --heads (the head size) must be even");
  if (s.kv_heads < 1 || s.heads % s.kv_heads != 0) return fail("--kv-heads must divide --heads");
  if (s.dim < 2 || s.dim > 16384 || s.ffn < 1 || s.ffn > 65536) return fail("--dim or --ffn out of range");
  if (s.vocab < 256 + 8 || s.vocab > 262144) return fail("--vocab must be in [264, 262144] (256 byte tokens + specials)");
  if (s.max_position < 16) return fail("--max-position must be at least 16");
  if (s.type == dtype::q8_0) return fail("--dtype must be f32, f16 or bf16 (q8_0 is a GGUF type: use --gguf-type)");
  if (s.shards < 1 || s.shards > 64) return fail("--shards must be in [1, 64]");
  if (s.gguf_type == dtype::q8_0 && (s.dim % 32 != 0 || s.ffn % 32 != 0))
    return fail("--gguf-type q8_0 needs --dim and --ffn to be multiples of 32");
  return {};
}

expected<void> make_tiny_model(const tiny_model_spec& s, const std::string& out_dir) {
  if (auto ok = validate(s); !ok) return ok;
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return fail(out_dir + ": cannot create folder: " + ec.message());
  const fs::path dir(out_dir);
  const model_config c = config_of(s);

  // Tokenizer first: its ids of bos/eos go into config.json.
  const family fam = family_of(s.arch);
  auto tok_json =
      train_bpe_tokenizer_json(default_training_corpus(), int32_t(s.vocab), fam.specials, fam.style);
  if (!tok_json) return tok_json.err();
  if (auto ok = write_text(dir / "tokenizer.json", *tok_json); !ok) return ok;
  std::string tc = "{\n  \"add_bos_token\": " + std::string(fam.add_bos ? "true" : "false") + ",\n";
  if (!fam.bos.empty()) tc += "  \"bos_token\": " + json_string(fam.bos) + ",\n";
  tc += "  \"eos_token\": " + json_string(fam.eos) + ",\n";
  tc += "  \"model_max_length\": " + std::to_string(s.max_position) + ",\n";
  tc += "  \"tokenizer_class\": \"PreTrainedTokenizerFast\",\n";
  tc += "  \"chat_template\": " + json_string(fam.chat_template) + "\n}\n";
  if (auto ok = write_text(dir / "tokenizer_config.json", tc); !ok) return ok;
  auto tok = load_tokenizer_json(out_dir);
  if (!tok) return tok.err();
  const int32_t bos = fam.bos.empty() ? -1 : (*tok)->token_id(fam.bos).value_or(-1);
  const int32_t eos = (*tok)->token_id(fam.eos).value_or(0);
  if (auto ok = write_text(dir / "config.json", hf_config_json(s, c, bos, eos)); !ok) return ok;

  // The HF checkpoint is the source, as for a real model: values are rounded to its dtype first, so
  // the GGUF copy (converted from it, norms kept in f32) holds exactly the same numbers.
  std::vector<f32_tensor> weights = random_weights(s, c);
  if (s.type != dtype::f32)
    for (auto& t : weights)
      for (float& x : t.values) x = s.type == dtype::bf16 ? bf16_to_f32(f32_to_bf16(x)) : f16_to_f32(f32_to_f16(x));

  // Safetensors, split into `shards` files of about equal size with an index when > 1.
  std::vector<std::vector<safetensors_entry>> shard_entries(size_t(s.shards));
  size_t total = 0;
  for (const auto& t : weights) total += t.values.size();
  size_t acc = 0;
  std::string weight_map;
  for (const auto& t : weights) {
    const size_t shard = std::min(size_t(s.shards) - 1, acc * size_t(s.shards) / std::max<size_t>(total, 1));
    acc += t.values.size();
    shard_entries[shard].push_back({t.hf_name, s.type, t.shape, encode(t.values, s.type)});
  }
  std::vector<std::string> names;
  for (int i = 0; i < s.shards; ++i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", i + 1, s.shards);
    names.push_back(s.shards == 1 ? "model.safetensors" : buf);
    if (auto ok = write_safetensors((dir / names.back()).string(), shard_entries[size_t(i)], {{"format", "pt"}}); !ok)
      return ok;
    for (const auto& e : shard_entries[size_t(i)])
      weight_map += (weight_map.empty() ? "    " : ",\n    ") + json_string(e.name) + ": " + json_string(names.back());
  }
  if (s.shards > 1) {
    const std::string index = "{\n  \"metadata\": {\"total_size\": " + std::to_string(total * (s.type == dtype::f32 ? 4 : 2)) +
                              "},\n  \"weight_map\": {\n" + weight_map + "\n  }\n}\n";
    if (auto ok = write_text(dir / "model.safetensors.index.json", index); !ok) return ok;
  }

  if (s.gguf_path.empty()) return {};

  // GGUF: the same weights, q/k rows permuted for llama-layout architectures, as llama.cpp writes.
  const std::string ga = s.arch == "qwen2" ? "qwen2" : "llama";
  std::map<std::string, gguf_value> meta;
  auto tmeta = tokenizer_gguf_metadata(out_dir);
  if (!tmeta) return tmeta.err();
  meta = std::move(*tmeta);
  meta["general.architecture"] = gguf_value{std::string(ga)};
  meta["general.name"] = gguf_value{std::string("troupe-tiny-" + s.arch)};
  meta[ga + ".block_count"] = gguf_value{uint32_t(c.n_layers)};
  meta[ga + ".context_length"] = gguf_value{uint32_t(c.max_position)};
  meta[ga + ".embedding_length"] = gguf_value{uint32_t(c.dim)};
  meta[ga + ".feed_forward_length"] = gguf_value{uint32_t(c.ffn_dim)};
  meta[ga + ".attention.head_count"] = gguf_value{uint32_t(c.n_heads)};
  meta[ga + ".attention.head_count_kv"] = gguf_value{uint32_t(c.n_kv_heads)};
  meta[ga + ".attention.layer_norm_rms_epsilon"] = gguf_value{float(c.rms_eps)};
  meta[ga + ".rope.freq_base"] = gguf_value{float(c.rope_theta)};
  meta[ga + ".rope.dimension_count"] = gguf_value{uint32_t(c.head_dim)};
  meta[ga + ".vocab_size"] = gguf_value{uint32_t(c.vocab_size)};
  const bool permute = ga == "llama";
  std::vector<gguf_tensor_entry> entries;
  for (const auto& t : weights) {
    std::vector<float> v = t.values;
    if (permute && t.gguf_name.ends_with("attn_q.weight")) v = permute_qk(v, c.n_heads, c.head_dim, c.dim);
    if (permute && t.gguf_name.ends_with("attn_k.weight")) v = permute_qk(v, c.n_kv_heads, c.head_dim, c.dim);
    const dtype type = t.is_matrix ? s.gguf_type : dtype::f32;
    entries.push_back({t.gguf_name, type, t.shape, encode(v, type)});
  }
  if (c.rope_scaling) {
    // llama.cpp stores Llama 3.1 scaling as per-frequency divisors of the unscaled inv_freq.
    model_config plain = c;
    plain.rope_scaling.reset();
    const std::vector<float> base = rope_inv_freq(plain), scaled = rope_inv_freq(c);
    std::vector<float> factors(base.size());
    for (size_t i = 0; i < base.size(); ++i) factors[i] = base[i] / scaled[i];
    entries.push_back({"rope_freqs.weight", dtype::f32, {int64_t(factors.size())}, encode(factors, dtype::f32)});
  }
  return write_gguf(s.gguf_path, meta, entries);
}

}  // namespace troupe::engine
