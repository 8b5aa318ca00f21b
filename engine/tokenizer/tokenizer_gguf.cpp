// The GGUF side of the tokenizer: reading tokenizer.ggml.* metadata (as llama.cpp writes it for
// byte-level BPE, model "gpt2") into a bpe_spec, and writing a tokenizer.json folder out as those
// keys. Metadata values are read straight from the map so that integer widths are all accepted.
#include <algorithm>

#include "engine/tokenizer/bpe_spec.hpp"
#include "engine/tokenizer/regex_split.hpp"
#include "engine/tokenizer/tokenizer_json.hpp"

namespace troupe::engine {
namespace {

// llama.cpp's token types.
enum : int32_t {
  token_normal = 1,
  token_unknown = 2,
  token_control = 3,
  token_user_defined = 4,
  token_unused = 5,
  token_byte = 6,
};

const char* value_type_name(const gguf_value& v) {
  static const char* const names[] = {"uint8", "int8",   "uint16", "int16",   "uint32",
                                      "int32", "uint64", "int64",  "float32", "float64",
                                      "bool",  "string", "array"};
  return names[v.v.index()];
}

std::optional<int64_t> as_int(const gguf_value& v) {
  return std::visit(
      [](const auto& x) -> std::optional<int64_t> {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
          if constexpr (std::is_same_v<T, uint64_t>) {
            if (x > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
          }
          return static_cast<int64_t>(x);
        } else {
          return std::nullopt;
        }
      },
      v.v);
}

// Messages start with the GGUF file's path when the metadata came from a mapped file.
std::string source_of(const gguf_file& f) {
  return f.file && !f.file->path().empty() ? f.file->path() : std::string("GGUF metadata");
}

error wrong_type(const std::string& where, const std::string& key, const gguf_value& v,
                 const char* want) {
  return fail(where + ": " + key + ": expected " + want + ", found " + value_type_name(v));
}

expected<std::optional<int64_t>> optional_int(const gguf_file& f, const std::string& key) {
  const auto it = f.metadata.find(key);
  if (it == f.metadata.end()) return std::optional<int64_t>();
  const auto i = as_int(it->second);
  if (!i) return wrong_type(source_of(f), key, it->second, "an integer");
  return std::optional<int64_t>(*i);
}

expected<std::vector<std::string>> string_array(const std::string& where, const gguf_value& v,
                                                const std::string& key) {
  const auto* arr = std::get_if<gguf_array>(&v.v);
  if (!arr) return wrong_type(where, key, v, "an array of strings");
  std::vector<std::string> out;
  out.reserve(arr->size());
  for (size_t i = 0; i < arr->size(); ++i) {
    const auto* s = std::get_if<std::string>(&(*arr)[i].v);
    if (!s)
      return fail(where + ": " + key + "[" + std::to_string(i) + "]: expected a string, found " +
                  value_type_name((*arr)[i]));
    out.push_back(*s);
  }
  return out;
}

gguf_value str(std::string s) { return gguf_value{std::move(s)}; }

}  // namespace

expected<std::unique_ptr<tokenizer>> load_tokenizer_gguf(const gguf_file& file) {
  const auto& md = file.metadata;
  const std::string where = source_of(file);
  const auto model_it = md.find("tokenizer.ggml.model");
  if (model_it == md.end())
    return fail(where + ": tokenizer.ggml.model: missing (no tokenizer in this file)");
  const auto* model = std::get_if<std::string>(&model_it->second.v);
  if (!model) return wrong_type(where, "tokenizer.ggml.model", model_it->second, "a string");
  if (*model != "gpt2") {
    return fail(where + ": tokenizer.ggml.model: \"" + *model +
                "\" is not supported (this build reads \"gpt2\", byte-level BPE)");
  }

  bpe_spec spec;
  spec.source = where;
  spec.merges_key = "tokenizer.ggml.merges";

  std::string pre = "default";
  if (const auto it = md.find("tokenizer.ggml.pre"); it != md.end()) {
    const auto* s = std::get_if<std::string>(&it->second.v);
    if (!s) return wrong_type(where, "tokenizer.ggml.pre", it->second, "a string");
    pre = *s;
  }
  if (pre == "llama-bpe" || pre == "llama3") {
    spec.pre_steps.push_back({std::string(llama3_split_pattern), false, "tokenizer.ggml.pre"});
    spec.ignore_merges = true;  // as llama.cpp does for Llama 3
    spec.add_bos = true;        // llama.cpp's default for Llama 3; add_bos_token overrides
  } else if (pre == "qwen2") {
    spec.pre_steps.push_back({std::string(qwen2_split_pattern), false, "tokenizer.ggml.pre"});
  } else if (pre == "gpt2" || pre == "default") {
    spec.pre_steps.push_back({std::string(gpt2_split_pattern), false, "tokenizer.ggml.pre"});
  } else {
    return fail(where + ": tokenizer.ggml.pre: \"" + pre +
                "\" is not supported (known: llama-bpe, llama3, qwen2, gpt2, default)");
  }

  const auto tokens_it = md.find("tokenizer.ggml.tokens");
  if (tokens_it == md.end()) return fail(where + ": tokenizer.ggml.tokens: missing");
  auto tokens = string_array(where, tokens_it->second, "tokenizer.ggml.tokens");
  if (!tokens) return tokens.err();
  if (tokens->empty()) return fail(where + ": tokenizer.ggml.tokens: empty");
  if (static_cast<int64_t>(tokens->size()) > max_token_id + 1) {
    return fail(where + ": tokenizer.ggml.tokens: " + std::to_string(tokens->size()) +
                " tokens is too many");
  }

  std::vector<int32_t> types(tokens->size(), token_normal);
  if (const auto it = md.find("tokenizer.ggml.token_type"); it != md.end()) {
    const auto* arr = std::get_if<gguf_array>(&it->second.v);
    if (!arr)
      return wrong_type(where, "tokenizer.ggml.token_type", it->second, "an array of integers");
    if (arr->size() != tokens->size()) {
      return fail(where + ": tokenizer.ggml.token_type: " + std::to_string(arr->size()) +
                  " entries for " + std::to_string(tokens->size()) + " tokens");
    }
    for (size_t i = 0; i < arr->size(); ++i) {
      const auto t = as_int((*arr)[i]);
      if (!t)
        return wrong_type(where, "tokenizer.ggml.token_type[" + std::to_string(i) + "]", (*arr)[i],
                          "an integer");
      types[i] = static_cast<int32_t>(std::clamp<int64_t>(*t, 0, 1000));
    }
  }

  const auto merges_it = md.find("tokenizer.ggml.merges");
  if (merges_it == md.end()) return fail(where + ": tokenizer.ggml.merges: missing");
  auto merges = string_array(where, merges_it->second, "tokenizer.ggml.merges");
  if (!merges) return merges.err();
  spec.merges.reserve(merges->size());
  for (size_t i = 0; i < merges->size(); ++i) {
    const std::string& m = (*merges)[i];
    const size_t space = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
    if (space == std::string::npos) {
      return fail(where + ": tokenizer.ggml.merges[" + std::to_string(i) + "]: \"" + m +
                  "\" is not two tokens separated by a space");
    }
    spec.merges.emplace_back(m.substr(0, space), m.substr(space + 1));
  }

  // Every token string is in the BPE vocabulary (llama.cpp's token_to_id); control and
  // user-defined tokens are also added tokens, matched in the text before pre-tokenization.
  spec.vocab = std::move(*tokens);
  for (size_t id = 0; id < spec.vocab.size(); ++id) {
    if ((types[id] == token_control || types[id] == token_user_defined) &&
        !spec.vocab[id].empty()) {
      added_token t;
      t.id = static_cast<int32_t>(id);
      t.content = spec.vocab[id];
      t.special = types[id] == token_control;
      spec.added.push_back(std::move(t));
    }
  }

  for (const auto& [key, target] : {std::pair{"tokenizer.ggml.bos_token_id", &spec.bos},
                                    std::pair{"tokenizer.ggml.eos_token_id", &spec.eos},
                                    std::pair{"tokenizer.ggml.unknown_token_id", &spec.unk}}) {
    auto v = optional_int(file, key);
    if (!v) return v.err();
    if (*v) {
      if (**v < 0 || **v >= static_cast<int64_t>(spec.vocab.size())) {
        return fail(where + ": " + std::string(key) + ": " + std::to_string(**v) +
                    " is outside the vocabulary");
      }
      *target = static_cast<int32_t>(**v);
    }
  }
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    auto v = optional_int(file, key);
    if (!v) return v.err();
    if (*v) {
      if (**v < 0 || **v >= static_cast<int64_t>(spec.vocab.size())) {
        return fail(where + ": " + std::string(key) + ": " + std::to_string(**v) +
                    " is outside the vocabulary");
      }
      spec.extra_eos.push_back(static_cast<int32_t>(**v));
    }
  }
  if (const auto it = md.find("tokenizer.ggml.add_bos_token"); it != md.end()) {
    const auto* b = std::get_if<bool>(&it->second.v);
    if (!b) return wrong_type(where, "tokenizer.ggml.add_bos_token", it->second, "a bool");
    spec.add_bos = *b;
  }
  return make_byte_bpe_tokenizer(std::move(spec));
}

expected<std::map<std::string, gguf_value>> tokenizer_gguf_metadata(const std::string& dir) {
  auto spec_result = read_tokenizer_json_spec(dir);
  if (!spec_result) return spec_result.err();
  const bpe_spec& spec = *spec_result;

  // GGUF names one split regex by family; anything else cannot be written faithfully.
  std::string pre;
  if (spec.pre_steps.size() == 1 && !spec.pre_steps[0].prefix_space) {
    const std::string& p = spec.pre_steps[0].pattern;
    if (p == llama3_split_pattern)
      pre = "llama-bpe";
    else if (p == qwen2_split_pattern)
      pre = "qwen2";
    else if (p == gpt2_split_pattern)
      pre = "gpt2";
  }
  if (pre.empty()) {
    std::string what;
    for (const auto& s : spec.pre_steps)
      what += (what.empty() ? "" : ", ") + (s.prefix_space ? "add_prefix_space" : s.pattern);
    return fail(
        spec.source + ": pre_tokenizer: [" + what +
        "] has no GGUF tokenizer.ggml.pre name (known: the GPT-2, Llama 3 and Qwen2 regexes)");
  }

  size_t size = spec.vocab.size();
  for (const auto& t : spec.added) size = std::max(size, static_cast<size_t>(t.id) + 1);
  std::vector<std::string> tokens(spec.vocab.begin(), spec.vocab.end());
  tokens.resize(size);
  std::vector<int32_t> types(size, token_normal);
  for (const auto& t : spec.added) {
    tokens[t.id] = t.content;
    types[t.id] = t.special ? token_control : token_user_defined;
  }
  gguf_array token_values, type_values, merge_values;
  token_values.reserve(size);
  type_values.reserve(size);
  for (size_t id = 0; id < size; ++id) {
    if (tokens[id].empty()) {
      // A hole in the ids: llama.cpp's converter writes a padding placeholder.
      tokens[id] = "[PAD" + std::to_string(id) + "]";
      types[id] = token_unused;
    }
    token_values.push_back(str(std::move(tokens[id])));
    type_values.push_back(gguf_value{types[id]});
  }
  merge_values.reserve(spec.merges.size());
  for (size_t i = 0; i < spec.merges.size(); ++i) {
    const auto& [a, b] = spec.merges[i];
    if (a.find(' ') != std::string::npos || b.find(' ') != std::string::npos) {
      return fail(spec.source + ": " + spec.merges_key + "[" + std::to_string(i) +
                  "]: a token with a space cannot be written as a GGUF \"a b\" merge");
    }
    merge_values.push_back(str(a + " " + b));
  }

  std::map<std::string, gguf_value> md;
  md["tokenizer.ggml.model"] = str("gpt2");
  md["tokenizer.ggml.pre"] = str(pre);
  md["tokenizer.ggml.tokens"] = gguf_value{std::move(token_values)};
  md["tokenizer.ggml.token_type"] = gguf_value{std::move(type_values)};
  md["tokenizer.ggml.merges"] = gguf_value{std::move(merge_values)};
  if (spec.bos) md["tokenizer.ggml.bos_token_id"] = gguf_value{static_cast<uint32_t>(*spec.bos)};
  if (spec.eos) md["tokenizer.ggml.eos_token_id"] = gguf_value{static_cast<uint32_t>(*spec.eos)};
  if (spec.unk)
    md["tokenizer.ggml.unknown_token_id"] = gguf_value{static_cast<uint32_t>(*spec.unk)};
  md["tokenizer.ggml.add_bos_token"] = gguf_value{spec.add_bos};
  if (!spec.chat_template.empty()) md["tokenizer.chat_template"] = str(spec.chat_template);
  return md;
}

}  // namespace troupe::engine
