// The pipeline sections of tokenizer.json. Supported: the normalizers, pre-tokenizers,
// post-processors and decoders that the BPE families (GPT-2, Llama 2/3, Mistral, Qwen2, Gemma)
// ship; anything else is a clear error rather than a silently different tokenizer.
#include "engine/tokenizer/tokenizer_json_pipeline.hpp"

#include "engine/tokenizer/regex_split.hpp"

namespace troupe::engine {
namespace {

// Calls `fn(item, key)` for each element of the list `o[list_key]`.
template <typename Fn>
expected<void> for_each_item(json_reader& r, dom::object o, const char* list_key,
                             const std::string& key, Fn&& fn) {
  const auto list_el = json_reader::member(o, list_key);
  const std::string list_name = key + "." + list_key;
  if (!list_el) return r.bad(list_name, "missing");
  TRY_ASSIGN(list, r.array(*list_el, list_name));
  size_t i = 0;
  for (dom::element item : list) TRY(fn(item, list_name + "[" + std::to_string(i++) + "]"));
  return {};
}

// A Replace/Split pattern: {"String": literal} or {"Regex": pattern}; `literal` tells which.
struct pattern_value {
  std::string text;
  bool literal = true;
  std::string key;
};
expected<pattern_value> read_pattern(json_reader& r, dom::object o, const std::string& key) {
  const auto pat_el = json_reader::member(o, "pattern");
  if (!pat_el) return r.bad(key + ".pattern", "missing");
  TRY_ASSIGN(pat, r.object(*pat_el, key + ".pattern"));
  if (const auto re = json_reader::member(pat, "Regex")) {
    TRY_ASSIGN(s, r.string(*re, key + ".pattern.Regex"));
    return pattern_value{std::move(s), false, key + ".pattern.Regex"};
  }
  if (const auto lit = json_reader::member(pat, "String")) {
    TRY_ASSIGN(s, r.string(*lit, key + ".pattern.String"));
    return pattern_value{std::move(s), true, key + ".pattern.String"};
  }
  return r.bad(key + ".pattern", "needs \"Regex\" or \"String\"");
}

// Metaspace's prepend scheme: "prepend_scheme", or the older boolean "add_prefix_space".
expected<pre_step::prepend> read_prepend_scheme(json_reader& r, dom::object o,
                                                const std::string& key) {
  if (const auto e = json_reader::present(o, "prepend_scheme")) {
    TRY_ASSIGN(s, r.string(*e, key + ".prepend_scheme"));
    if (s == "always") return pre_step::prepend::always;
    if (s == "first") return pre_step::prepend::first;
    if (s == "never") return pre_step::prepend::never;
    return r.bad(key + ".prepend_scheme", "\"" + s + "\" is not always, first or never");
  }
  TRY_ASSIGN(add, r.flag(o, "add_prefix_space", key + ".add_prefix_space", true));
  return add ? pre_step::prepend::always : pre_step::prepend::never;
}

expected<std::string> read_replacement(json_reader& r, dom::object o, const std::string& key) {
  std::string replacement(metaspace);
  if (const auto e = json_reader::present(o, "replacement")) {
    TRY_ASSIGN(s, r.string(*e, key + ".replacement"));
    replacement = std::move(s);
  }
  return replacement;
}

}  // namespace

expected<void> read_normalizer(json_reader& r, dom::element e, const std::string& key,
                               tokenizer_spec& spec) {
  if (e.is_null()) return {};
  TRY_ASSIGN(o, r.object(e, key));
  TRY_ASSIGN(type, r.tag(o, key));
  using kind = normalizer_step::kind;
  normalizer_step step;
  if (type == "Sequence") {
    return for_each_item(r, o, "normalizers", key, [&](dom::element item, const std::string& k) {
      return read_normalizer(r, item, k, spec);
    });
  } else if (type == "NFC") {
    step.what = kind::nfc;
  } else if (type == "NFD") {
    step.what = kind::nfd;
  } else if (type == "NFKC") {
    step.what = kind::nfkc;
  } else if (type == "NFKD") {
    step.what = kind::nfkd;
  } else if (type == "Lowercase") {
    step.what = kind::lowercase;
  } else if (type == "Prepend") {
    step.what = kind::prepend;
    const auto p = json_reader::member(o, "prepend");
    if (!p) return r.bad(key + ".prepend", "missing");
    TRY_ASSIGN(s, r.string(*p, key + ".prepend"));
    step.text = std::move(s);
  } else if (type == "Replace") {
    step.what = kind::replace;
    TRY_ASSIGN(pattern, read_pattern(r, o, key));
    if (!pattern.literal) return r.bad(pattern.key, "a regex Replace is not supported");
    const auto c = json_reader::member(o, "content");
    if (!c) return r.bad(key + ".content", "missing");
    TRY_ASSIGN(content, r.string(*c, key + ".content"));
    step.text = std::move(pattern.text);
    step.content = std::move(content);
  } else if (type == "Strip") {
    step.what = kind::strip;
    TRY_ASSIGN(left, r.flag(o, "strip_left", key + ".strip_left", true));
    TRY_ASSIGN(right, r.flag(o, "strip_right", key + ".strip_right", true));
    step.left = left;
    step.right = right;
  } else {
    return r.bad(key + ".type", "\"" + type + "\" is not supported");
  }
  spec.normalizer.push_back(std::move(step));
  return {};
}

expected<void> read_pre_tokenizer(json_reader& r, dom::element e, const std::string& key,
                                  tokenizer_spec& spec) {
  if (e.is_null()) return {};
  TRY_ASSIGN(o, r.object(e, key));
  TRY_ASSIGN(type, r.tag(o, key));
  if (type == "Sequence") {
    return for_each_item(r, o, "pretokenizers", key, [&](dom::element item, const std::string& k) {
      return read_pre_tokenizer(r, item, k, spec);
    });
  }
  // Steps after ByteLevel would see byte-level spellings, not text; no known file does that.
  if (spec.byte_level)
    return r.bad(key + ".type", "\"" + type + "\" after ByteLevel is not supported");
  pre_step step;
  step.key = key;
  if (type == "ByteLevel") {
    // Hugging Face's defaults when the keys are absent: add_prefix_space and use_regex true.
    TRY_ASSIGN(prefix, r.flag(o, "add_prefix_space", key + ".add_prefix_space", true));
    TRY_ASSIGN(use_regex, r.flag(o, "use_regex", key + ".use_regex", true));
    if (prefix) {
      step.what = pre_step::kind::prefix_space;
      spec.pre_steps.push_back(step);
    }
    if (use_regex) spec.pre_steps.push_back(regex_split_step(std::string(gpt2_split_pattern), key));
    spec.byte_level = true;
    return {};
  }
  if (type == "Split") {
    TRY_ASSIGN(pattern, read_pattern(r, o, key));
    step.pattern = pattern.literal ? regex_escape(pattern.text) : std::move(pattern.text);
    step.key = pattern.key;
    if (const auto b = json_reader::present(o, "behavior")) {
      TRY_ASSIGN(behavior, r.string(*b, key + ".behavior"));
      using bh = pre_step::behavior;
      if (behavior == "Isolated") {
        step.split_behavior = bh::isolated;
      } else if (behavior == "Removed") {
        step.split_behavior = bh::removed;
      } else if (behavior == "MergedWithPrevious") {
        step.split_behavior = bh::merged_with_previous;
      } else if (behavior == "MergedWithNext") {
        step.split_behavior = bh::merged_with_next;
      } else if (behavior == "Contiguous") {
        step.split_behavior = bh::contiguous;
      } else {
        return r.bad(key + ".behavior", "\"" + behavior + "\" is not a split behavior");
      }
    }
    TRY_ASSIGN(invert, r.flag(o, "invert", key + ".invert", false));
    step.invert = invert;
  } else if (type == "Digits") {
    TRY_ASSIGN(individual, r.flag(o, "individual_digits", key + ".individual_digits", false));
    step.pattern = individual ? R"(\p{N})" : R"(\p{N}+)";
  } else if (type == "Metaspace") {
    step.what = pre_step::kind::metaspace;
    TRY_ASSIGN(replacement, read_replacement(r, o, key));
    TRY_ASSIGN(scheme, read_prepend_scheme(r, o, key));
    TRY_ASSIGN(split, r.flag(o, "split", key + ".split", true));
    step.replacement = std::move(replacement);
    step.prepend_scheme = scheme;
    step.split_words = split;
  } else {
    return r.bad(key + ".type", "\"" + type + "\" is not supported");
  }
  spec.pre_steps.push_back(std::move(step));
  return {};
}

expected<post_template> read_post_processor(json_reader& r, dom::element e,
                                            const std::string& key) {
  post_template out;
  if (e.is_null()) return out;
  TRY_ASSIGN(o, r.object(e, key));
  TRY_ASSIGN(type, r.tag(o, key));
  if (type == "ByteLevel") return out;
  if (type == "Sequence") {
    TRY(for_each_item(r, o, "processors", key, [&](dom::element item, const std::string& k) -> expected<void> {
      TRY_ASSIGN(inner, read_post_processor(r, item, k));
      out.prefix.insert(out.prefix.end(), inner.prefix.begin(), inner.prefix.end());
      out.suffix.insert(out.suffix.begin(), inner.suffix.begin(), inner.suffix.end());
      return {};
    }));
    return out;
  }
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    // cls before the text, sep after it; each a ["token", id] pair.
    for (const auto& [name, target] : {std::pair{"cls", &out.prefix}, std::pair{"sep", &out.suffix}}) {
      const std::string k = key + "." + name;
      const auto pair_el = json_reader::member(o, name);
      if (!pair_el) return r.bad(k, "missing");
      TRY_ASSIGN(pair, r.array(*pair_el, k));
      if (pair.size() != 2) return r.bad(k, "expected [token, id]");
      TRY_ASSIGN(id, r.integer(pair.at(1).value_unsafe(), k + "[1]"));
      if (id < 0 || id > max_token_id) return r.bad(k + "[1]", "out of range");
      target->push_back(static_cast<int32_t>(id));
    }
    return out;
  }
  if (type != "TemplateProcessing")
    return r.bad(key + ".type", "\"" + type + "\" is not supported");
  const auto table_el = json_reader::member(o, "special_tokens");
  dom::object table;
  if (table_el) {
    TRY_ASSIGN(t, r.object(*table_el, key + ".special_tokens"));
    table = t;
  }
  bool seen_text = false;
  TRY(for_each_item(r, o, "single", key, [&](dom::element item, const std::string& k) -> expected<void> {
    TRY_ASSIGN(entry, r.object(item, k));
    if (json_reader::member(entry, "Sequence")) {
      if (seen_text) return r.bad(k, "a second sequence is not supported");
      seen_text = true;
      return {};
    }
    const auto special_el = json_reader::member(entry, "SpecialToken");
    if (!special_el) return r.bad(k, "needs \"SpecialToken\" or \"Sequence\"");
    TRY_ASSIGN(special, r.object(*special_el, k + ".SpecialToken"));
    const auto name_el = json_reader::member(special, "id");
    if (!name_el) return r.bad(k + ".SpecialToken.id", "missing");
    TRY_ASSIGN(name, r.string(*name_el, k + ".SpecialToken.id"));
    const std::string tokens_key = key + ".special_tokens[\"" + name + "\"]";
    if (!table_el) return r.bad(tokens_key, "missing");
    const auto token_el = json_reader::member(table, name);
    if (!token_el) return r.bad(tokens_key, "missing");
    TRY_ASSIGN(token, r.object(*token_el, tokens_key));
    const auto ids_el = json_reader::member(token, "ids");
    if (!ids_el) return r.bad(tokens_key + ".ids", "missing");
    TRY_ASSIGN(ids, r.array(*ids_el, tokens_key + ".ids"));
    size_t i = 0;
    for (dom::element id_el : ids) {
      TRY_ASSIGN(id, r.integer(id_el, tokens_key + ".ids[" + std::to_string(i++) + "]"));
      if (id < 0 || id > max_token_id) return r.bad(tokens_key + ".ids", "out of range");
      (seen_text ? out.suffix : out.prefix).push_back(static_cast<int32_t>(id));
    }
    return {};
  }));
  return out;
}

namespace {

// One decoder step; `fused` tracks Fuse, since a Strip before it would act on every token, which
// no known file wants.
expected<void> read_decoder_step(json_reader& r, dom::element e, const std::string& key,
                                 tokenizer_spec& spec, bool& fused) {
  if (e.is_null()) return r.bad(key, "is null (tokens would be joined with spaces; not supported)");
  TRY_ASSIGN(o, r.object(e, key));
  TRY_ASSIGN(type, r.tag(o, key));
  if (type == "Sequence") {
    return for_each_item(r, o, "decoders", key, [&](dom::element item, const std::string& k) {
      return read_decoder_step(r, item, k, spec, fused);
    });
  }
  if (type == "ByteLevel") {
    if (!spec.byte_level) return r.bad(key + ".type", "ByteLevel without a ByteLevel pre-tokenizer is not supported");
    return {};
  }
  if (spec.byte_level)
    return r.bad(key + ".type", "\"" + type + "\" with a ByteLevel pre-tokenizer is not supported");
  if (type == "ByteFallback") {
    spec.decode_byte_fallback = true;
    return {};
  }
  if (type == "Fuse") {
    fused = true;
    return {};
  }
  if (type == "Replace") {
    TRY_ASSIGN(pattern, read_pattern(r, o, key));
    if (!pattern.literal) return r.bad(pattern.key, "a regex Replace is not supported");
    const auto c = json_reader::member(o, "content");
    if (!c) return r.bad(key + ".content", "missing");
    TRY_ASSIGN(content, r.string(*c, key + ".content"));
    if (spec.decode_replace) return r.bad(key, "a second Replace is not supported");
    spec.decode_replace = std::pair{std::move(pattern.text), std::move(content)};
    return {};
  }
  if (type == "Strip") {
    const auto c = json_reader::member(o, "content");
    if (!c) return r.bad(key + ".content", "missing");
    TRY_ASSIGN(content, r.string(*c, key + ".content"));
    int64_t start = 0, stop = 0;
    for (const auto& [name, target] : {std::pair{"start", &start}, std::pair{"stop", &stop}}) {
      if (const auto v = json_reader::present(o, name)) {
        TRY_ASSIGN(n, r.integer(*v, key + "." + name));
        *target = n;
      }
    }
    if (content != " " || start < 0 || start > 1 || stop != 0 || (start == 1 && !fused)) {
      return r.bad(key, "only Strip(\" \", 1, 0) after Fuse is supported");
    }
    spec.decode_strip_leading_space = spec.decode_strip_leading_space || start == 1;
    return {};
  }
  if (type == "Metaspace") {
    TRY_ASSIGN(replacement, read_replacement(r, o, key));
    TRY_ASSIGN(scheme, read_prepend_scheme(r, o, key));
    if (spec.decode_replace) return r.bad(key, "Metaspace after a Replace is not supported");
    spec.decode_replace = std::pair{std::move(replacement), std::string(" ")};
    spec.decode_strip_leading_space = scheme != pre_step::prepend::never;
    return {};
  }
  return r.bad(key + ".type", "\"" + type + "\" is not supported");
}

}  // namespace

expected<void> read_decoder(json_reader& r, dom::element e, const std::string& key,
                            tokenizer_spec& spec) {
  bool fused = false;
  return read_decoder_step(r, e, key, spec, fused);
}

}  // namespace troupe::engine
