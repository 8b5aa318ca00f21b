// Reads tokenizer.json (the BPE model, added tokens and the pipeline sections) and
// tokenizer_config.json (bos/eos names, add_bos_token / add_eos_token, chat_template) into a
// tokenizer_spec. The JSON is untrusted: every key is type-checked and every id range-checked.
#include "engine/tokenizer/tokenizer_json.hpp"

#include <algorithm>
#include <filesystem>
#include <map>

#include "engine/model/json_reader.hpp"
#include "engine/tokenizer/tokenizer_json_pipeline.hpp"

namespace troupe::engine {
namespace {

// Settings from tokenizer_config.json; each optional.
struct config_values {
  std::optional<bool> add_bos;
  std::optional<bool> add_eos;
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

// Reads the config from `text` when given, else from `path` when the file exists.
expected<config_values> read_config(const std::string& path, std::optional<std::string_view> text) {
  config_values cfg;
  std::error_code ec;
  if (!text && !std::filesystem::exists(path, ec)) return cfg;
  json_reader r(path);
  TRY_ASSIGN(root_el, text ? r.load_text(*text) : r.load());
  TRY_ASSIGN(root, r.object(root_el, "(top level)"));
  if (const auto e = json_reader::present(root, "add_bos_token")) {
    TRY_ASSIGN(b, r.boolean(*e, "add_bos_token"));
    cfg.add_bos = b;
  }
  if (const auto e = json_reader::present(root, "add_eos_token")) {
    TRY_ASSIGN(b, r.boolean(*e, "add_eos_token"));
    cfg.add_eos = b;
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

expected<void> read_model(json_reader& r, dom::object root, tokenizer_spec& spec) {
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
  TRY_ASSIGN(byte_fallback, r.flag(model, "byte_fallback", "model.byte_fallback", false));
  TRY_ASSIGN(fuse_unk, r.flag(model, "fuse_unk", "model.fuse_unk", false));
  spec.ignore_merges = ignore;
  spec.byte_fallback = byte_fallback;
  spec.fuse_unk = fuse_unk;
  if (const auto e = json_reader::present(model, "dropout")) {
    // Dropout is a training-time randomization; at inference Hugging Face ignores it too only
    // when it is absent, so a file that sets it is refused rather than tokenized differently.
    double p = 0;
    if (e->get_double().get(p) || p != 0.0) return r.bad("model.dropout", "is not supported");
  }
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

expected<void> read_added_tokens(json_reader& r, dom::object root, tokenizer_spec& spec) {
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
    // Hugging Face's default: specials match the raw text, other added tokens the normalized one.
    TRY_ASSIGN(normalized, r.flag(o, "normalized", key + ".normalized", !special));
    t.normalized = normalized;
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

// Finds a token by its content: added tokens first, then the model vocabulary.
std::optional<int32_t> find_token(const tokenizer_spec& spec, const std::string& content) {
  for (const auto& t : spec.added) {
    if (t.content == content) return t.id;
  }
  for (size_t id = 0; id < spec.vocab.size(); ++id) {
    if (spec.vocab[id] == content) return static_cast<int32_t>(id);
  }
  return std::nullopt;
}


// The spec from the folder's files, or from the given texts (messages name the files either way).
expected<tokenizer_spec> read_spec(const std::string& dir,
                                   std::optional<std::string_view> tokenizer_text,
                                   std::optional<std::string_view> config_text) {
  tokenizer_spec spec;
  const std::string config_path = (std::filesystem::path(dir) / "tokenizer_config.json").string();
  TRY_ASSIGN(cfg, read_config(config_path, config_text));
  spec.source = (std::filesystem::path(dir) / "tokenizer.json").string();
  json_reader r(spec.source);
  TRY_ASSIGN(root_el, tokenizer_text ? r.load_text(*tokenizer_text) : r.load());
  TRY_ASSIGN(root, r.object(root_el, "(top level)"));

  TRY(read_model(r, root, spec));
  TRY(read_added_tokens(r, root, spec));
  if (const auto e = json_reader::member(root, "normalizer"))
    TRY(read_normalizer(r, *e, "normalizer", spec));
  if (const auto e = json_reader::member(root, "pre_tokenizer"))
    TRY(read_pre_tokenizer(r, *e, "pre_tokenizer", spec));
  post_template post;
  if (const auto e = json_reader::member(root, "post_processor")) {
    TRY_ASSIGN(p, read_post_processor(r, *e, "post_processor"));
    post = std::move(p);
  }
  const auto decoder = json_reader::member(root, "decoder");
  if (!decoder) return r.bad("decoder", "missing");
  TRY(read_decoder(r, *decoder, "decoder", spec));
  if (!spec.byte_level && !spec.decode_replace) {
    return r.bad("decoder", "neither ByteLevel nor a \"▁\" Replace/Metaspace: the text could not "
                            "be decoded faithfully");
  }

  if (cfg.bos) {
    spec.bos = find_token(spec, *cfg.bos);
    if (!spec.bos)
      return fail(config_path + ": bos_token: \"" + *cfg.bos + "\" is not in the vocabulary");
  } else if (!post.prefix.empty()) {
    spec.bos = post.prefix.front();
  }
  if (cfg.eos) {
    spec.eos = find_token(spec, *cfg.eos);
    if (!spec.eos)
      return fail(config_path + ": eos_token: \"" + *cfg.eos + "\" is not in the vocabulary");
  }
  // The post-processor's template decides what goes around the text; an explicit add_bos_token /
  // add_eos_token in the config wins (transformers rebuilds the template from them).
  spec.prefix = std::move(post.prefix);
  spec.suffix = std::move(post.suffix);
  const auto apply_flag = [&](std::optional<bool> flag, const std::optional<int32_t>& id,
                              std::vector<int32_t>& list, bool front,
                              const char* name) -> expected<void> {
    if (!flag) return {};
    if (!id) {
      if (*flag) return fail(config_path + ": " + name + ": true, but there is no such token");
      return {};
    }
    std::erase(list, *id);
    if (*flag) list.insert(front ? list.begin() : list.end(), *id);
    return {};
  };
  TRY(apply_flag(cfg.add_bos, spec.bos, spec.prefix, true, "add_bos_token"));
  TRY(apply_flag(cfg.add_eos, spec.eos, spec.suffix, false, "add_eos_token"));
  spec.chat_template = std::move(cfg.chat_template);
  return spec;
}

}  // namespace

expected<tokenizer_spec> read_tokenizer_json_spec(const std::string& dir) {
  return read_spec(dir, std::nullopt, std::nullopt);
}

expected<std::unique_ptr<tokenizer>> load_tokenizer_json_text(std::string_view tokenizer_json,
                                                              std::string_view config_json,
                                                              const std::string& name) {
  auto spec = read_spec(name, tokenizer_json, config_json);
  if (!spec) return spec.err();
  return make_bpe_tokenizer(std::move(*spec));
}

expected<std::unique_ptr<tokenizer>> load_tokenizer_json(const std::string& dir) {
  auto spec = read_tokenizer_json_spec(dir);
  if (!spec) return spec.err();
  return make_bpe_tokenizer(std::move(*spec));
}

}  // namespace troupe::engine
