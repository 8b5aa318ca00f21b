// Reads tokenizer.json (model BPE, ByteLevel pre-tokenizer / decoder, added tokens, post-processor)
// and tokenizer_config.json (bos/eos names, add_bos_token, chat_template) into a bpe_spec.
// The JSON is untrusted: every key is type-checked and every id range-checked.
#include "engine/tokenizer/tokenizer_json.hpp"

#include <simdjson.h>

#include <filesystem>
#include <map>

#include "engine/tokenizer/regex_split.hpp"

namespace troupe::engine {
namespace {

namespace dom = simdjson::dom;

const char* type_name(dom::element_type t) {
  switch (t) {
    case dom::element_type::ARRAY:
      return "array";
    case dom::element_type::OBJECT:
      return "object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
      return "integer";
    case dom::element_type::DOUBLE:
      return "number";
    case dom::element_type::STRING:
      return "string";
    case dom::element_type::BOOL:
      return "boolean";
    case dom::element_type::NULL_VALUE:
      return "null";
  }
  return "value";
}

// Typed access to one JSON file; every error starts with the file's path and names the key.
class json_reader {
 public:
  explicit json_reader(std::string path) : path_(std::move(path)) {}

  expected<dom::element> load() {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path_, ec)) return fail(path_ + ": no such file");
    if (auto e = simdjson::padded_string::load(path_).get(text_)) {
      return fail(path_ + ": cannot read: " + simdjson::error_message(e));
    }
    dom::element root;
    if (auto e = parser_.parse(text_).get(root)) {
      return fail(path_ + ": malformed JSON: " + simdjson::error_message(e));
    }
    return root;
  }

  error bad(const std::string& key, const std::string& what) const {
    return fail(path_ + ": " + key + ": " + what);
  }
  error wrong_type(const std::string& key, dom::element e, const char* want) const {
    return bad(key, std::string("expected ") + want + ", found " + type_name(e.type()));
  }

  static std::optional<dom::element> member(dom::object o, std::string_view k) {
    dom::element e;
    if (o.at_key(k).get(e)) return std::nullopt;
    return e;
  }
  // A member that is absent or null reads as nullopt.
  static std::optional<dom::element> present(dom::object o, std::string_view k) {
    auto e = member(o, k);
    if (e && e->is_null()) return std::nullopt;
    return e;
  }

  expected<dom::object> object(dom::element e, const std::string& key) const {
    dom::object o;
    if (e.get_object().get(o)) return wrong_type(key, e, "an object");
    return o;
  }
  expected<dom::array> array(dom::element e, const std::string& key) const {
    dom::array a;
    if (e.get_array().get(a)) return wrong_type(key, e, "an array");
    return a;
  }
  expected<std::string> string(dom::element e, const std::string& key) const {
    std::string_view s;
    if (e.get_string().get(s)) return wrong_type(key, e, "a string");
    return std::string(s);
  }
  expected<bool> boolean(dom::element e, const std::string& key) const {
    bool b = false;
    if (e.get_bool().get(b)) return wrong_type(key, e, "a boolean");
    return b;
  }
  expected<int64_t> integer(dom::element e, const std::string& key) const {
    int64_t v = 0;
    if (e.get_int64().get(v)) return wrong_type(key, e, "an integer");
    return v;
  }
  // An optional boolean member with a default.
  expected<bool> flag(dom::object o, std::string_view k, const std::string& key, bool dflt) const {
    const auto e = present(o, k);
    if (!e) return dflt;
    return boolean(*e, key);
  }
  // The "type" string of a tagged object.
  expected<std::string> tag(dom::object o, const std::string& key) const {
    const auto e = member(o, "type");
    if (!e) return bad(key, "has no \"type\"");
    return string(*e, key + ".type");
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  simdjson::padded_string text_;
  dom::parser parser_;
};

#define TRY_ASSIGN(var, expr)                   \
  auto var##_result = (expr);                   \
  if (!var##_result) return var##_result.err(); \
  auto var = std::move(*var##_result)

#define TRY(expr)                               \
  do {                                          \
    auto try_result_ = (expr);                  \
    if (!try_result_) return try_result_.err(); \
  } while (0)

// Settings from tokenizer_config.json; each optional.
struct config_values {
  std::optional<bool> add_bos;
  std::optional<std::string> bos;
  std::optional<std::string> eos;
  std::string chat_template;
};

// A token name in the config: a string, or an AddedToken object {"content": ...}; null is absent.
expected<std::optional<std::string>> config_token(json_reader& r, dom::object root,
                                                  const char* key) {
  const auto e = json_reader::present(root, key);
  if (!e) return std::optional<std::string>();
  if (e->is_string()) {
    TRY_ASSIGN(s, r.string(*e, key));
    return std::optional<std::string>(s);
  }
  TRY_ASSIGN(o, r.object(*e, key));
  const auto c = json_reader::member(o, "content");
  if (!c) return r.bad(std::string(key) + ".content", "missing");
  TRY_ASSIGN(s, r.string(*c, std::string(key) + ".content"));
  return std::optional<std::string>(s);
}

expected<config_values> read_config(const std::string& dir) {
  config_values cfg;
  const std::string path = (std::filesystem::path(dir) / "tokenizer_config.json").string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return cfg;
  json_reader r(path);
  TRY_ASSIGN(root_el, r.load());
  TRY_ASSIGN(root, r.object(root_el, "(top level)"));
  if (const auto e = json_reader::present(root, "add_bos_token")) {
    TRY_ASSIGN(b, r.boolean(*e, "add_bos_token"));
    cfg.add_bos = b;
  }
  TRY_ASSIGN(bos, config_token(r, root, "bos_token"));
  TRY_ASSIGN(eos, config_token(r, root, "eos_token"));
  cfg.bos = bos;
  cfg.eos = eos;
  if (const auto e = json_reader::present(root, "chat_template")) {
    if (e->is_string()) {
      TRY_ASSIGN(s, r.string(*e, "chat_template"));
      cfg.chat_template = s;
    } else {
      // A list of named templates: take "default", else the first.
      TRY_ASSIGN(list, r.array(*e, "chat_template"));
      size_t i = 0;
      for (dom::element item : list) {
        const std::string key = "chat_template[" + std::to_string(i++) + "]";
        TRY_ASSIGN(o, r.object(item, key));
        const auto name = json_reader::member(o, "name");
        const auto tmpl = json_reader::member(o, "template");
        if (!name || !tmpl) return r.bad(key, "needs \"name\" and \"template\"");
        TRY_ASSIGN(n, r.string(*name, key + ".name"));
        TRY_ASSIGN(t, r.string(*tmpl, key + ".template"));
        if (cfg.chat_template.empty() || n == "default") cfg.chat_template = t;
        if (n == "default") break;
      }
    }
  }
  return cfg;
}

expected<void> read_model(json_reader& r, dom::object root, bpe_spec& spec) {
  const auto model_el = json_reader::member(root, "model");
  if (!model_el) return r.bad("model", "missing");
  TRY_ASSIGN(model, r.object(*model_el, "model"));
  if (const auto t = json_reader::member(model, "type")) {
    TRY_ASSIGN(type, r.string(*t, "model.type"));
    if (type != "BPE")
      return r.bad("model.type", "\"" + type + "\" is not supported (this build reads BPE)");
  }
  const auto vocab_el = json_reader::member(model, "vocab");
  if (!vocab_el) return r.bad("model.vocab", "missing");
  TRY_ASSIGN(vocab, r.object(*vocab_el, "model.vocab"));
  int64_t max_id = -1;
  size_t count = 0;
  for (const auto field : vocab) {
    const std::string key = "model.vocab[\"" + std::string(field.key) + "\"]";
    TRY_ASSIGN(id, r.integer(field.value, key));
    if (id < 0 || id > max_token_id)
      return r.bad(key, "id " + std::to_string(id) + " out of range");
    max_id = std::max(max_id, id);
    ++count;
  }
  // Ids far beyond the entry count would only make us allocate for holes.
  if (max_id >= 0 && static_cast<uint64_t>(max_id) > 2 * count + 1024) {
    return r.bad("model.vocab", "ids up to " + std::to_string(max_id) + " for only " +
                                    std::to_string(count) + " entries");
  }
  spec.vocab.assign(static_cast<size_t>(max_id + 1), std::string());
  for (const auto field : vocab) {
    int64_t id = 0;
    if (field.value.get_int64().get(id)) continue;  // cannot happen: checked in the first pass
    if (!spec.vocab[id].empty()) {
      return r.bad("model.vocab", "id " + std::to_string(id) + " is used by \"" + spec.vocab[id] +
                                      "\" and \"" + std::string(field.key) + "\"");
    }
    spec.vocab[id] = std::string(field.key);
  }

  spec.merges_key = "model.merges";
  const auto merges_el = json_reader::member(model, "merges");
  if (!merges_el) return r.bad("model.merges", "missing");
  TRY_ASSIGN(merges, r.array(*merges_el, "model.merges"));
  spec.merges.reserve(merges.size());
  size_t i = 0;
  for (dom::element m : merges) {
    const std::string key = "model.merges[" + std::to_string(i++) + "]";
    if (m.is_string()) {
      TRY_ASSIGN(s, r.string(m, key));
      const size_t space = s.size() > 1 ? s.find(' ', 1) : std::string::npos;
      if (space == std::string::npos)
        return r.bad(key, "\"" + s + "\" is not two tokens separated by a space");
      spec.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else {
      TRY_ASSIGN(pair, r.array(m, key));
      if (pair.size() != 2) return r.bad(key, "expected a pair of tokens");
      TRY_ASSIGN(a, r.string(pair.at(0).value_unsafe(), key + "[0]"));
      TRY_ASSIGN(b, r.string(pair.at(1).value_unsafe(), key + "[1]"));
      spec.merges.emplace_back(std::move(a), std::move(b));
    }
  }

  TRY_ASSIGN(ignore, r.flag(model, "ignore_merges", "model.ignore_merges", false));
  spec.ignore_merges = ignore;
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (const auto e = json_reader::present(model, k)) {
      TRY_ASSIGN(s, r.string(*e, std::string("model.") + k));
      if (!s.empty()) return r.bad(std::string("model.") + k, "is not supported");
    }
  }
  if (const auto e = json_reader::present(model, "unk_token")) {
    TRY_ASSIGN(unk, r.string(*e, "model.unk_token"));
    for (size_t id = 0; id < spec.vocab.size(); ++id) {
      if (spec.vocab[id] == unk) spec.unk = static_cast<int32_t>(id);
    }
    if (!spec.unk) return r.bad("model.unk_token", "\"" + unk + "\" is not in model.vocab");
  }
  return {};
}

expected<void> read_added_tokens(json_reader& r, dom::object root, bpe_spec& spec) {
  const auto list_el = json_reader::present(root, "added_tokens");
  if (!list_el) return {};
  TRY_ASSIGN(list, r.array(*list_el, "added_tokens"));
  size_t i = 0;
  for (dom::element item : list) {
    const std::string key = "added_tokens[" + std::to_string(i++) + "]";
    TRY_ASSIGN(o, r.object(item, key));
    added_token t;
    const auto id_el = json_reader::member(o, "id");
    const auto content_el = json_reader::member(o, "content");
    if (!id_el) return r.bad(key + ".id", "missing");
    if (!content_el) return r.bad(key + ".content", "missing");
    TRY_ASSIGN(id, r.integer(*id_el, key + ".id"));
    if (id < 0 || id > max_token_id)
      return r.bad(key + ".id", std::to_string(id) + " out of range");
    t.id = static_cast<int32_t>(id);
    TRY_ASSIGN(content, r.string(*content_el, key + ".content"));
    if (content.empty()) return r.bad(key + ".content", "is empty");
    t.content = std::move(content);
    TRY_ASSIGN(special, r.flag(o, "special", key + ".special", false));
    TRY_ASSIGN(lstrip, r.flag(o, "lstrip", key + ".lstrip", false));
    TRY_ASSIGN(rstrip, r.flag(o, "rstrip", key + ".rstrip", false));
    TRY_ASSIGN(single_word, r.flag(o, "single_word", key + ".single_word", false));
    // "normalized" decides whether the token is matched before or after the normalizer; with no
    // normalizer applied here both mean the same, so it is only type-checked.
    TRY(r.flag(o, "normalized", key + ".normalized", true));
    t.special = special;
    t.lstrip = lstrip;
    t.rstrip = rstrip;
    t.single_word = single_word;
    spec.added.push_back(std::move(t));
  }
  // A later entry for the same id replaces the earlier one.
  std::map<int32_t, size_t> last;
  for (size_t k = 0; k < spec.added.size(); ++k) last[spec.added[k].id] = k;
  if (last.size() != spec.added.size()) {
    std::vector<added_token> unique;
    for (const auto& [id, k] : last) unique.push_back(spec.added[k]);
    spec.added = std::move(unique);
  }
  return {};
}

expected<void> read_normalizer(json_reader& r, dom::object root) {
  const auto e = json_reader::present(root, "normalizer");
  if (!e) return {};
  TRY_ASSIGN(o, r.object(*e, "normalizer"));
  TRY_ASSIGN(type, r.tag(o, "normalizer"));
  // NFC (Qwen2) is accepted but not applied: it is the identity on NFC text, which is what
  // nearly all input is. Applying it exactly belongs with the byte-exact work.
  if (type == "NFC") return {};
  if (type == "Sequence") {
    const auto list_el = json_reader::member(o, "normalizers");
    if (!list_el) return r.bad("normalizer.normalizers", "missing");
    TRY_ASSIGN(list, r.array(*list_el, "normalizer.normalizers"));
    if (list.size() == 0) return {};
  }
  return r.bad("normalizer.type", "\"" + type + "\" is not supported");
}

expected<void> read_pre_step(json_reader& r, dom::element e, const std::string& key, bpe_spec& spec,
                             bool& byte_level) {
  if (e.is_null()) return {};
  TRY_ASSIGN(o, r.object(e, key));
  TRY_ASSIGN(type, r.tag(o, key));
  if (type == "Sequence") {
    const auto list_el = json_reader::member(o, "pretokenizers");
    if (!list_el) return r.bad(key + ".pretokenizers", "missing");
    TRY_ASSIGN(list, r.array(*list_el, key + ".pretokenizers"));
    size_t i = 0;
    for (dom::element item : list) {
      TRY(read_pre_step(r, item, key + ".pretokenizers[" + std::to_string(i++) + "]", spec,
                        byte_level));
    }
    return {};
  }
  // Steps after ByteLevel would see byte-level spellings, not text; no known file does that.
  if (byte_level) return r.bad(key + ".type", "\"" + type + "\" after ByteLevel is not supported");
  if (type == "ByteLevel") {
    // Hugging Face's defaults when the keys are absent: add_prefix_space and use_regex true.
    TRY_ASSIGN(prefix, r.flag(o, "add_prefix_space", key + ".add_prefix_space", true));
    TRY_ASSIGN(use_regex, r.flag(o, "use_regex", key + ".use_regex", true));
    if (prefix) spec.pre_steps.push_back({"", true, key + ".add_prefix_space"});
    if (use_regex) spec.pre_steps.push_back({std::string(gpt2_split_pattern), false, key});
    byte_level = true;
    return {};
  }
  if (type == "Split") {
    const auto pat_el = json_reader::member(o, "pattern");
    if (!pat_el) return r.bad(key + ".pattern", "missing");
    TRY_ASSIGN(pat, r.object(*pat_el, key + ".pattern"));
    std::string pattern;
    std::string pattern_key;
    if (const auto re = json_reader::member(pat, "Regex")) {
      pattern_key = key + ".pattern.Regex";
      TRY_ASSIGN(s, r.string(*re, pattern_key));
      pattern = std::move(s);
    } else if (const auto lit = json_reader::member(pat, "String")) {
      pattern_key = key + ".pattern.String";
      TRY_ASSIGN(s, r.string(*lit, pattern_key));
      pattern = regex_escape(s);
    } else {
      return r.bad(key + ".pattern", "needs \"Regex\" or \"String\"");
    }
    if (const auto b = json_reader::present(o, "behavior")) {
      TRY_ASSIGN(behavior, r.string(*b, key + ".behavior"));
      if (behavior != "Isolated") {
        return r.bad(key + ".behavior", "\"" + behavior + "\" is not supported (only Isolated)");
      }
    }
    TRY_ASSIGN(invert, r.flag(o, "invert", key + ".invert", false));
    if (invert) return r.bad(key + ".invert", "true is not supported");
    spec.pre_steps.push_back({std::move(pattern), false, pattern_key});
    return {};
  }
  if (type == "Digits") {
    TRY_ASSIGN(individual, r.flag(o, "individual_digits", key + ".individual_digits", false));
    spec.pre_steps.push_back({individual ? R"(\p{N})" : R"(\p{N}+)", false, key});
    return {};
  }
  return r.bad(key + ".type", "\"" + type + "\" is not supported");
}

// The TemplateProcessing "single" template: a leading special token is a bos the post-processor
// adds (Llama 3's <|begin_of_text|>).
expected<void> read_post_processor(json_reader& r, dom::element e, const std::string& key,
                                   std::optional<int32_t>& template_bos) {
  if (e.is_null()) return {};
  TRY_ASSIGN(o, r.object(e, key));
  TRY_ASSIGN(type, r.tag(o, key));
  if (type == "ByteLevel") return {};
  if (type == "Sequence") {
    const auto list_el = json_reader::member(o, "processors");
    if (!list_el) return r.bad(key + ".processors", "missing");
    TRY_ASSIGN(list, r.array(*list_el, key + ".processors"));
    size_t i = 0;
    for (dom::element item : list) {
      TRY(read_post_processor(r, item, key + ".processors[" + std::to_string(i++) + "]",
                              template_bos));
    }
    return {};
  }
  if (type != "TemplateProcessing")
    return r.bad(key + ".type", "\"" + type + "\" is not supported");
  const auto single_el = json_reader::member(o, "single");
  if (!single_el) return r.bad(key + ".single", "missing");
  TRY_ASSIGN(single, r.array(*single_el, key + ".single"));
  if (single.size() == 0) return {};
  TRY_ASSIGN(first, r.object(single.at(0).value_unsafe(), key + ".single[0]"));
  const auto special_el = json_reader::member(first, "SpecialToken");
  if (!special_el) return {};
  TRY_ASSIGN(special, r.object(*special_el, key + ".single[0].SpecialToken"));
  const auto name_el = json_reader::member(special, "id");
  if (!name_el) return r.bad(key + ".single[0].SpecialToken.id", "missing");
  TRY_ASSIGN(name, r.string(*name_el, key + ".single[0].SpecialToken.id"));
  const std::string tokens_key = key + ".special_tokens[\"" + name + "\"]";
  const auto table_el = json_reader::member(o, "special_tokens");
  if (!table_el) return r.bad(tokens_key, "missing");
  TRY_ASSIGN(table, r.object(*table_el, key + ".special_tokens"));
  const auto entry_el = json_reader::member(table, name);
  if (!entry_el) return r.bad(tokens_key, "missing");
  TRY_ASSIGN(entry, r.object(*entry_el, tokens_key));
  const auto ids_el = json_reader::member(entry, "ids");
  if (!ids_el) return r.bad(tokens_key + ".ids", "missing");
  TRY_ASSIGN(ids, r.array(*ids_el, tokens_key + ".ids"));
  if (ids.size() != 1) return r.bad(tokens_key + ".ids", "expected exactly one id");
  TRY_ASSIGN(id, r.integer(ids.at(0).value_unsafe(), tokens_key + ".ids[0]"));
  if (id < 0 || id > max_token_id) return r.bad(tokens_key + ".ids[0]", "out of range");
  template_bos = static_cast<int32_t>(id);
  return {};
}

expected<void> read_decoder(json_reader& r, dom::element e, const std::string& key) {
  if (e.is_null()) return r.bad(key, "is null (this build needs the ByteLevel decoder)");
  TRY_ASSIGN(o, r.object(e, key));
  TRY_ASSIGN(type, r.tag(o, key));
  if (type == "ByteLevel") return {};
  if (type == "Sequence") {
    const auto list_el = json_reader::member(o, "decoders");
    if (!list_el) return r.bad(key + ".decoders", "missing");
    TRY_ASSIGN(list, r.array(*list_el, key + ".decoders"));
    if (list.size() == 0) return r.bad(key + ".decoders", "is empty");
    size_t i = 0;
    for (dom::element item : list)
      TRY(read_decoder(r, item, key + ".decoders[" + std::to_string(i++) + "]"));
    return {};
  }
  return r.bad(key + ".type", "\"" + type + "\" is not supported (this build needs ByteLevel)");
}

// Finds a token by its content: added tokens first, then the model vocabulary.
std::optional<int32_t> find_token(const bpe_spec& spec, const std::string& content) {
  for (const auto& t : spec.added) {
    if (t.content == content) return t.id;
  }
  for (size_t id = 0; id < spec.vocab.size(); ++id) {
    if (spec.vocab[id] == content) return static_cast<int32_t>(id);
  }
  return std::nullopt;
}

}  // namespace

expected<bpe_spec> read_tokenizer_json_spec(const std::string& dir) {
  bpe_spec spec;
  TRY_ASSIGN(cfg, read_config(dir));
  spec.source = (std::filesystem::path(dir) / "tokenizer.json").string();
  json_reader r(spec.source);
  TRY_ASSIGN(root_el, r.load());
  TRY_ASSIGN(root, r.object(root_el, "(top level)"));

  TRY(read_model(r, root, spec));
  TRY(read_added_tokens(r, root, spec));
  TRY(read_normalizer(r, root));

  bool byte_level = false;
  if (const auto pre = json_reader::member(root, "pre_tokenizer")) {
    TRY(read_pre_step(r, *pre, "pre_tokenizer", spec, byte_level));
  }
  if (!byte_level)
    return r.bad("pre_tokenizer", "has no ByteLevel step (this build reads byte-level BPE)");

  std::optional<int32_t> template_bos;
  if (const auto post = json_reader::member(root, "post_processor")) {
    TRY(read_post_processor(r, *post, "post_processor", template_bos));
  }
  const auto decoder = json_reader::member(root, "decoder");
  if (!decoder) return r.bad("decoder", "missing (this build needs the ByteLevel decoder)");
  TRY(read_decoder(r, *decoder, "decoder"));

  const std::string config_path = (std::filesystem::path(dir) / "tokenizer_config.json").string();
  if (cfg.bos) {
    spec.bos = find_token(spec, *cfg.bos);
    if (!spec.bos)
      return fail(config_path + ": bos_token: \"" + *cfg.bos + "\" is not in the vocabulary");
  } else {
    spec.bos = template_bos;
  }
  if (cfg.eos) {
    spec.eos = find_token(spec, *cfg.eos);
    if (!spec.eos)
      return fail(config_path + ": eos_token: \"" + *cfg.eos + "\" is not in the vocabulary");
  }
  // An explicit add_bos_token wins; otherwise the post-processor's template decides.
  spec.add_bos = cfg.add_bos.value_or(template_bos.has_value());
  spec.chat_template = std::move(cfg.chat_template);
  return spec;
}

expected<std::unique_ptr<tokenizer>> load_tokenizer_json(const std::string& dir) {
  auto spec = read_tokenizer_json_spec(dir);
  if (!spec) return spec.err();
  return make_byte_bpe_tokenizer(std::move(*spec));
}

}  // namespace troupe::engine
