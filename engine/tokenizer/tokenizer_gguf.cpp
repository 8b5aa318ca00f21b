// The GGUF side of the tokenizer: reading tokenizer.ggml.* metadata (as llama.cpp writes it: model
// "gpt2" for byte-level BPE, "llama" for SentencePiece BPE with scores) into a tokenizer_spec, and
// writing a tokenizer.json folder out as those keys. Metadata values are read straight from the
// map so that integer widths are all accepted.
#include <algorithm>
#include <unordered_map>

#include "engine/tokenizer/regex_split.hpp"
#include "engine/tokenizer/sentencepiece_merges.hpp"
#include "engine/tokenizer/tokenizer_json.hpp"
#include "engine/tokenizer/tokenizer_spec.hpp"

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

std::optional<double> as_float(const gguf_value& v) {
  if (const auto* f = std::get_if<float>(&v.v)) return *f;
  if (const auto* d = std::get_if<double>(&v.v)) return *d;
  if (const auto i = as_int(v)) return static_cast<double>(*i);
  return std::nullopt;
}

expected<std::optional<bool>> optional_bool(const gguf_file& f, const std::string& key) {
  const auto it = f.metadata.find(key);
  if (it == f.metadata.end()) return std::optional<bool>();
  const auto* b = std::get_if<bool>(&it->second.v);
  if (!b) return wrong_type(source_of(f), key, it->second, "a bool");
  return std::optional<bool>(*b);
}

// A token id key, checked against the vocabulary size.
expected<std::optional<int32_t>> optional_id(const gguf_file& f, const std::string& key,
                                             size_t vocab_size) {
  auto v = optional_int(f, key);
  if (!v) return v.err();
  if (!*v) return std::optional<int32_t>();
  if (**v < 0 || **v >= static_cast<int64_t>(vocab_size)) {
    return fail(source_of(f) + ": " + key + ": " + std::to_string(**v) +
                " is outside the vocabulary");
  }
  return std::optional<int32_t>(static_cast<int32_t>(**v));
}

// The "a b" merge strings of a gpt2 file.
expected<void> read_merges(const gguf_file& f, tokenizer_spec& spec) {
  const std::string where = source_of(f);
  const auto merges_it = f.metadata.find("tokenizer.ggml.merges");
  if (merges_it == f.metadata.end()) return fail(where + ": tokenizer.ggml.merges: missing");
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
  return {};
}

// The byte-level split regex a gpt2 file names with tokenizer.ggml.pre.
expected<void> read_pre(const gguf_file& f, tokenizer_spec& spec) {
  std::string pre = "default";
  if (const auto it = f.metadata.find("tokenizer.ggml.pre"); it != f.metadata.end()) {
    const auto* s = std::get_if<std::string>(&it->second.v);
    if (!s) return wrong_type(source_of(f), "tokenizer.ggml.pre", it->second, "a string");
    pre = *s;
  }
  std::string_view pattern;
  if (pre == "llama-bpe" || pre == "llama3") {
    pattern = llama3_split_pattern;
    spec.ignore_merges = true;  // as llama.cpp does for Llama 3
  } else if (pre == "qwen2") {
    pattern = qwen2_split_pattern;
    // Qwen2's tokenizer.json normalizes to NFC. llama.cpp skips it; Troupe applies it, so that a
    // GGUF gives the ids Hugging Face gives (they differ only on text that is not already NFC).
    normalizer_step nfc;
    nfc.what = normalizer_step::kind::nfc;
    spec.normalizer.push_back(nfc);
  } else if (pre == "gpt2" || pre == "default") {
    pattern = gpt2_split_pattern;
  } else {
    return fail(source_of(f) + ": tokenizer.ggml.pre: \"" + pre +
                "\" is not supported (known: llama-bpe, llama3, qwen2, gpt2, default)");
  }
  spec.pre_steps.push_back(regex_split_step(std::string(pattern), "tokenizer.ggml.pre"));
  spec.byte_level = true;
  return {};
}

// A llama (SentencePiece) file: merges come from the scores; spaces are "▁", with a leading one
// added when tokenizer.ggml.add_space_prefix (llama.cpp's default) and dropped when decoding.
expected<void> read_sentencepiece(const gguf_file& f, const std::vector<int32_t>& types,
                                  tokenizer_spec& spec) {
  const std::string where = source_of(f);
  const auto scores_it = f.metadata.find("tokenizer.ggml.scores");
  if (scores_it == f.metadata.end()) return fail(where + ": tokenizer.ggml.scores: missing");
  const auto* arr = std::get_if<gguf_array>(&scores_it->second.v);
  if (!arr) return wrong_type(where, "tokenizer.ggml.scores", scores_it->second, "an array of floats");
  if (arr->size() != spec.vocab.size()) {
    return fail(where + ": tokenizer.ggml.scores: " + std::to_string(arr->size()) +
                " entries for " + std::to_string(spec.vocab.size()) + " tokens");
  }
  std::vector<float> scores(arr->size());
  std::vector<bool> mergeable(arr->size());
  for (size_t i = 0; i < arr->size(); ++i) {
    const auto v = as_float((*arr)[i]);
    if (!v) {
      return wrong_type(where, "tokenizer.ggml.scores[" + std::to_string(i) + "]", (*arr)[i],
                        "a number");
    }
    scores[i] = static_cast<float>(*v);
    mergeable[i] = types[i] != token_control && types[i] != token_byte;
  }
  spec.merges = merges_from_scores(spec.vocab, scores, mergeable);
  spec.merges_key = "tokenizer.ggml.scores (derived merges)";
  spec.byte_fallback = true;

  auto prefix = optional_bool(f, "tokenizer.ggml.add_space_prefix");
  if (!prefix) return prefix.err();
  auto extra = optional_bool(f, "tokenizer.ggml.remove_extra_whitespaces");
  if (!extra) return extra.err();
  if (extra->value_or(false))
    return fail(where + ": tokenizer.ggml.remove_extra_whitespaces: true is not supported");
  const bool add_space_prefix = prefix->value_or(true);
  const std::string space(metaspace);
  normalizer_step step;
  if (add_space_prefix) {
    step.what = normalizer_step::kind::prepend;
    step.text = space;
    spec.normalizer.push_back(step);
  }
  step.what = normalizer_step::kind::replace;
  step.text = " ";
  step.content = space;
  spec.normalizer.push_back(step);
  spec.decode_replace = std::pair{space, std::string(" ")};
  spec.decode_byte_fallback = true;
  spec.decode_strip_leading_space = add_space_prefix;
  if (!spec.unk) {
    for (size_t id = 0; id < types.size(); ++id) {
      if (types[id] == token_unknown) {
        spec.unk = static_cast<int32_t>(id);
        break;
      }
    }
  }
  return {};
}

}  // namespace

expected<std::unique_ptr<tokenizer>> load_tokenizer_gguf(const gguf_file& file) {
  const auto& md = file.metadata;
  const std::string where = source_of(file);
  const auto model_it = md.find("tokenizer.ggml.model");
  if (model_it == md.end())
    return fail(where + ": tokenizer.ggml.model: missing (no tokenizer in this file)");
  const auto* model = std::get_if<std::string>(&model_it->second.v);
  if (!model) return wrong_type(where, "tokenizer.ggml.model", model_it->second, "a string");
  const bool sentencepiece = *model == "llama";
  if (*model != "gpt2" && !sentencepiece) {
    return fail(where + ": tokenizer.ggml.model: \"" + *model +
                "\" is not supported (this build reads \"gpt2\", byte-level BPE, and \"llama\", "
                "SentencePiece BPE)");
  }

  tokenizer_spec spec;
  spec.source = where;
  spec.merges_key = "tokenizer.ggml.merges";
  if (!sentencepiece) {
    if (auto ok = read_pre(file, spec); !ok) return ok.err();
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

  // Every token string is in the BPE vocabulary (llama.cpp's token_to_id); control and
  // user-defined tokens are also added tokens, matched in the raw text before anything else.
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

  const size_t n = spec.vocab.size();
  for (const auto& [key, target] : {std::pair{"tokenizer.ggml.bos_token_id", &spec.bos},
                                    std::pair{"tokenizer.ggml.eos_token_id", &spec.eos},
                                    std::pair{"tokenizer.ggml.unknown_token_id", &spec.unk}}) {
    auto v = optional_id(file, key, n);
    if (!v) return v.err();
    *target = *v;
  }
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    auto v = optional_id(file, key, n);
    if (!v) return v.err();
    if (*v) spec.extra_eos.push_back(**v);
  }

  if (sentencepiece) {
    if (auto ok = read_sentencepiece(file, types, spec); !ok) return ok.err();
  } else {
    if (auto ok = read_merges(file, spec); !ok) return ok.err();
  }

  // llama.cpp's defaults: a bos for SentencePiece and Llama 3 vocabularies, no eos.
  auto add_bos = optional_bool(file, "tokenizer.ggml.add_bos_token");
  if (!add_bos) return add_bos.err();
  auto add_eos = optional_bool(file, "tokenizer.ggml.add_eos_token");
  if (!add_eos) return add_eos.err();
  if (add_bos->value_or(sentencepiece || spec.ignore_merges) && spec.bos) spec.prefix = {*spec.bos};
  if (add_eos->value_or(false) && spec.eos) spec.suffix = {*spec.eos};
  if (const auto it = md.find("tokenizer.chat_template"); it != md.end()) {
    const auto* t = std::get_if<std::string>(&it->second.v);
    if (!t) return wrong_type(where, "tokenizer.chat_template", it->second, "a string");
    spec.chat_template = *t;
  }
  return make_bpe_tokenizer(std::move(spec));
}

namespace {

// The byte-level pre-tokenizer's GGUF name, or an error naming what has none.
expected<std::string> gguf_pre_name(const tokenizer_spec& spec) {
  if (spec.normalizer.empty() && spec.pre_steps.size() == 1 &&
      spec.pre_steps[0].what == pre_step::kind::split &&
      spec.pre_steps[0].split_behavior == pre_step::behavior::isolated && !spec.pre_steps[0].invert) {
    const std::string& p = spec.pre_steps[0].pattern;
    if (p == llama3_split_pattern) return std::string("llama-bpe");
    if (p == gpt2_split_pattern) return std::string("gpt2");
  }
  // Qwen2: the NFC normalizer (or none) and its regex; reading applies NFC (see read_pre).
  if (spec.pre_steps.size() == 1 && spec.pre_steps[0].what == pre_step::kind::split &&
      spec.pre_steps[0].pattern == qwen2_split_pattern &&
      (spec.normalizer.empty() ||
       (spec.normalizer.size() == 1 && spec.normalizer[0].what == normalizer_step::kind::nfc))) {
    return std::string("qwen2");
  }
  std::string what;
  for (const auto& s : spec.pre_steps) {
    what += (what.empty() ? "" : ", ") +
            (s.what == pre_step::kind::split ? s.pattern
                                             : s.what == pre_step::kind::prefix_space
                                                   ? std::string("add_prefix_space")
                                                   : std::string("Metaspace"));
  }
  return fail(spec.source + ": pre_tokenizer: [" + what +
              "] has no GGUF tokenizer.ggml.pre name (known: the GPT-2, Llama 3 and Qwen2 "
              "regexes, without another normalizer)");
}

// Whether a SentencePiece spec adds the leading "▁" (GGUF add_space_prefix), or an error naming
// the pipeline llama.cpp could not reproduce.
expected<bool> gguf_space_prefix(const tokenizer_spec& spec) {
  using nk = normalizer_step::kind;
  const auto is_replace = [](const normalizer_step& s) {
    return s.what == nk::replace && s.text == " " && s.content == metaspace;
  };
  const auto& n = spec.normalizer;
  if (spec.pre_steps.empty()) {
    if (n.size() == 2 && n[0].what == nk::prepend && n[0].text == metaspace && is_replace(n[1]))
      return true;
    if (n.size() == 1 && is_replace(n[0])) return false;
  } else if (n.empty() && spec.pre_steps.size() == 1 &&
             spec.pre_steps[0].what == pre_step::kind::metaspace &&
             spec.pre_steps[0].replacement == metaspace && !spec.pre_steps[0].split_words &&
             spec.pre_steps[0].prepend_scheme != pre_step::prepend::first) {
    return spec.pre_steps[0].prepend_scheme == pre_step::prepend::always;
  }
  return fail(spec.source +
              ": normalizer/pre_tokenizer: only the Prepend(\"▁\") + Replace(\" \", \"▁\") "
              "normalizer, or Metaspace(always|never, split false), has a GGUF \"llama\" form");
}

}  // namespace

expected<std::map<std::string, gguf_value>> tokenizer_gguf_metadata(const std::string& dir) {
  auto spec_result = read_tokenizer_json_spec(dir);
  if (!spec_result) return spec_result.err();
  const tokenizer_spec& spec = *spec_result;
  const bool sentencepiece = !spec.byte_level;

  std::string pre;
  bool space_prefix = false;
  if (sentencepiece) {
    auto p = gguf_space_prefix(spec);
    if (!p) return p.err();
    space_prefix = *p;
    if (!spec.byte_fallback)
      return fail(spec.source + ": model.byte_fallback: a GGUF \"llama\" vocabulary needs it");
  } else {
    auto name = gguf_pre_name(spec);
    if (!name) return name.err();
    pre = *name;
  }

  // llama.cpp matches added tokens in the raw text, exactly: no normalization, no stripping.
  for (const auto& t : spec.added) {
    const bool normalized = t.normalized && !spec.normalizer.empty();
    if (normalized || t.lstrip || t.rstrip || t.single_word) {
      return fail(spec.source + ": added token \"" + t.content + "\" is " +
                  (normalized ? "matched after normalization" : "lstrip/rstrip/single_word") +
                  ", which GGUF cannot express");
    }
  }
  size_t size = spec.vocab.size();
  for (const auto& t : spec.added) size = std::max(size, static_cast<size_t>(t.id) + 1);
  std::vector<std::string> tokens(spec.vocab.begin(), spec.vocab.end());
  tokens.resize(size);
  std::vector<int32_t> types(size, token_normal);
  for (size_t id = 0; id < spec.vocab.size(); ++id) {
    const std::string& t = spec.vocab[id];
    if (sentencepiece && t.size() == 6 && t.starts_with("<0x") && t.back() == '>') types[id] = token_byte;
  }
  if (spec.unk) types[*spec.unk] = token_unknown;
  for (const auto& t : spec.added) {
    tokens[t.id] = t.content;
    types[t.id] = t.special ? token_control : token_user_defined;
  }
  gguf_array token_values, type_values;
  token_values.reserve(size);
  type_values.reserve(size);
  for (size_t id = 0; id < size; ++id) {
    if (tokens[id].empty()) {
      // A hole in the ids: llama.cpp's converter writes a padding placeholder.
      tokens[id] = "[PAD" + std::to_string(id) + "]";
      types[id] = token_unused;
    }
    token_values.push_back(str(tokens[id]));
    type_values.push_back(gguf_value{types[id]});
  }

  std::map<std::string, gguf_value> md;
  if (sentencepiece) {
    // Scores that rank the tokens by their merges: tokens whose merges interleave in the list
    // (Llama 2's whitespace runs) share a score. The merges a reader derives from the scores must
    // be exactly the file's, or the GGUF would tokenize differently.
    struct span {
      size_t first, last;
    };
    std::unordered_map<std::string, span> spans;
    for (size_t r = 0; r < spec.merges.size(); ++r) {
      auto [it, fresh] = spans.try_emplace(spec.merges[r].first + spec.merges[r].second, span{r, r});
      it->second.last = r;
    }
    std::vector<std::pair<span, std::string_view>> order;
    for (const auto& [token, sp] : spans) order.emplace_back(sp, token);
    std::sort(order.begin(), order.end(),
              [](const auto& a, const auto& b) { return a.first.first < b.first.first; });
    std::unordered_map<std::string_view, float> group_score;
    size_t group = 0, group_end = 0;
    for (size_t k = 0; k < order.size(); ++k) {
      if (k > 0 && order[k].first.first > group_end) ++group;
      group_end = k == 0 ? order[k].first.last : std::max(group_end, order[k].first.last);
      group_score[order[k].second] = -static_cast<float>(group) - 1.0f;
    }
    std::vector<float> scores(size, 0.0f);
    std::vector<bool> mergeable(size);
    for (size_t id = 0; id < size; ++id) {
      mergeable[id] = types[id] != token_control && types[id] != token_byte;
      const auto it = group_score.find(tokens[id]);
      if (it != group_score.end()) scores[id] = it->second;
    }
    if (merges_from_scores(tokens, scores, mergeable) != spec.merges) {
      return fail(spec.source + ": model.merges: not every split of every token in score order "
                                "(as Hugging Face derives merges from a SentencePiece model), so "
                                "GGUF scores cannot express them");
    }
    gguf_array score_values;
    score_values.reserve(size);
    for (const float sc : scores) score_values.push_back(gguf_value{sc});
    md["tokenizer.ggml.model"] = str("llama");
    md["tokenizer.ggml.pre"] = str("default");
    md["tokenizer.ggml.scores"] = gguf_value{std::move(score_values)};
    md["tokenizer.ggml.add_space_prefix"] = gguf_value{space_prefix};
  } else {
    gguf_array merge_values;
    merge_values.reserve(spec.merges.size());
    for (size_t i = 0; i < spec.merges.size(); ++i) {
      const auto& [a, b] = spec.merges[i];
      if (a.find(' ') != std::string::npos || b.find(' ') != std::string::npos) {
        return fail(spec.source + ": " + spec.merges_key + "[" + std::to_string(i) +
                    "]: a token with a space cannot be written as a GGUF \"a b\" merge");
      }
      merge_values.push_back(str(a + " " + b));
    }
    md["tokenizer.ggml.model"] = str("gpt2");
    md["tokenizer.ggml.pre"] = str(pre);
    md["tokenizer.ggml.merges"] = gguf_value{std::move(merge_values)};
  }
  md["tokenizer.ggml.tokens"] = gguf_value{std::move(token_values)};
  md["tokenizer.ggml.token_type"] = gguf_value{std::move(type_values)};
  if (spec.bos) md["tokenizer.ggml.bos_token_id"] = gguf_value{static_cast<uint32_t>(*spec.bos)};
  if (spec.eos) md["tokenizer.ggml.eos_token_id"] = gguf_value{static_cast<uint32_t>(*spec.eos)};
  if (spec.unk)
    md["tokenizer.ggml.unknown_token_id"] = gguf_value{static_cast<uint32_t>(*spec.unk)};
  const bool bos_first = spec.bos && spec.prefix == std::vector<int32_t>{*spec.bos};
  const bool eos_last = spec.eos && spec.suffix == std::vector<int32_t>{*spec.eos};
  if ((!spec.prefix.empty() && !bos_first) || (!spec.suffix.empty() && !eos_last)) {
    return fail(spec.source + ": post_processor: only a bos before and an eos after the text "
                              "have GGUF add_bos_token / add_eos_token forms");
  }
  md["tokenizer.ggml.add_bos_token"] = gguf_value{bos_first};
  md["tokenizer.ggml.add_eos_token"] = gguf_value{eos_last};
  if (!spec.chat_template.empty()) md["tokenizer.chat_template"] = str(spec.chat_template);
  return md;
}

}  // namespace troupe::engine
