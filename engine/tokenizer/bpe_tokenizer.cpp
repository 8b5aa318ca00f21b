// The BPE tokenizer, as Hugging Face's pipeline runs it: added tokens are cut out of the raw text
// first; each stretch between them is normalized, cut again at normalized added tokens,
// pre-tokenized into words, spelled in the model's alphabet and merged by the BPE model; the
// post-processor's ids go around the result. Decoding maps each token to its bytes.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <deque>
#include <unordered_map>

#include "engine/tokenizer/bpe_model.hpp"
#include "engine/tokenizer/byte_level.hpp"
#include "engine/tokenizer/normalizer.hpp"
#include "engine/tokenizer/pre_tokenizer.hpp"
#include "engine/tokenizer/tokenizer_spec.hpp"

namespace troupe::engine {
namespace {

struct tokenizer_parts {
  std::unique_ptr<bpe_model> model;
  normalizer norm;
  pre_tokenizer pre;
  added_token_matcher raw_added;         // matched in the raw text
  added_token_matcher normalized_added;  // matched in normalized text (their content normalized)
  bool byte_level = false;
  std::vector<std::string> token_text;  // per id: the bytes it decodes to
  std::vector<uint8_t> special;         // per id: 1 for special (control) tokens
  bool strip_leading_space = false;
  special_tokens specials;
  std::string chat_template;
  std::unordered_map<std::string, int32_t> added_ids;
};

class bpe_tokenizer final : public tokenizer {
 public:
  explicit bpe_tokenizer(tokenizer_parts parts) : p_(std::move(parts)) {}

  std::vector<int32_t> encode(std::string_view text, bool add_special,
                              bool parse_special) const override {
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 4);
    if (add_special) ids.insert(ids.end(), p_.specials.prefix.begin(), p_.specials.prefix.end());
    std::vector<added_token_matcher::segment> segments, subsegments;
    p_.raw_added.split(text, parse_special, segments);
    std::vector<std::string_view> words;
    std::deque<std::string> storage;
    std::string spelled;
    for (const auto& seg : segments) {
      if (seg.id >= 0) {
        ids.push_back(seg.id);
        continue;
      }
      const bool at_start = seg.text.data() == text.data();
      storage.clear();
      std::string_view normalized = seg.text;
      if (!p_.norm.empty()) normalized = storage.emplace_back(p_.norm.apply(seg.text));
      subsegments.clear();
      p_.normalized_added.split(normalized, parse_special, subsegments);
      for (const auto& sub : subsegments) {
        if (sub.id >= 0) {
          ids.push_back(sub.id);
          continue;
        }
        words.clear();
        p_.pre.split(sub.text, at_start && sub.text.data() == normalized.data(), words, storage);
        for (const auto word : words) {
          if (p_.byte_level) {
            spelled = byte_level_encode(word);
            p_.model->encode_word(spelled, ids);
          } else {
            p_.model->encode_word(word, ids);
          }
        }
      }
    }
    if (add_special) ids.insert(ids.end(), p_.specials.suffix.begin(), p_.specials.suffix.end());
    return ids;
  }

  std::string token_bytes(int32_t id) const override {
    if (id < 0 || id >= vocab_size()) return {};
    return p_.token_text[id];
  }

  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const override {
    std::string out;
    for (const int32_t id : ids) {
      if (id < 0 || id >= vocab_size()) continue;
      if (skip_special && p_.special[id]) continue;
      out += p_.token_text[id];
    }
    if (p_.strip_leading_space && out.starts_with(' ')) out.erase(0, 1);
    return out;
  }

  bool strips_leading_space() const override { return p_.strip_leading_space; }

  int32_t vocab_size() const override { return static_cast<int32_t>(p_.token_text.size()); }

  bool is_special(int32_t id) const override {
    return id >= 0 && id < vocab_size() && p_.special[id] != 0;
  }

  const special_tokens& specials() const override { return p_.specials; }

  const std::string& chat_template() const override { return p_.chat_template; }

  std::optional<int32_t> token_id(std::string_view token) const override {
    const std::string key(token);
    if (const auto it = p_.added_ids.find(key); it != p_.added_ids.end()) return it->second;
    if (const auto it = p_.model->vocab().find(key); it != p_.model->vocab().end())
      return it->second;
    return std::nullopt;
  }

 private:
  tokenizer_parts p_;
};

// The text one model token decodes to: byte-level spelling mapped back to bytes, or (SentencePiece)
// "▁" turned back into spaces and <0xXX> into its byte.
std::string model_token_text(const tokenizer_spec& spec, const std::string& token) {
  if (spec.byte_level) return byte_level_decode(token);
  if (spec.decode_byte_fallback && token.size() == 6 && token.starts_with("<0x") &&
      token.back() == '>') {
    unsigned value = 0;
    if (std::sscanf(token.c_str() + 3, "%2x", &value) == 1 && std::isxdigit(token[3]) &&
        std::isxdigit(token[4])) {
      return std::string(1, static_cast<char>(value));
    }
  }
  if (!spec.decode_replace || spec.decode_replace->first.empty()) return token;
  const auto& [from, to] = *spec.decode_replace;
  std::string out;
  size_t pos = 0;
  for (size_t hit = token.find(from); hit != std::string::npos; hit = token.find(from, pos)) {
    out.append(token, pos, hit - pos);
    out += to;
    pos = hit + from.size();
  }
  out.append(token, pos);
  return out;
}

}  // namespace

expected<std::unique_ptr<tokenizer>> make_bpe_tokenizer(tokenizer_spec spec) {
  const std::string& src = spec.source;
  int64_t size = static_cast<int64_t>(spec.vocab.size());
  for (const auto& t : spec.added) {
    if (t.id < 0 || t.id > max_token_id) {
      return fail(src + ": added token \"" + t.content + "\" has id " + std::to_string(t.id) +
                  " out of range");
    }
    size = std::max<int64_t>(size, int64_t{t.id} + 1);
  }
  if (size == 0) return fail(src + ": the vocabulary is empty");
  if (size > max_token_id + 1)
    return fail(src + ": vocabulary of " + std::to_string(size) + " ids is too large");
  const auto check_id = [&](const std::optional<int32_t>& id, const char* what) -> expected<void> {
    if (id && (*id < 0 || *id >= size)) {
      return fail(src + ": " + what + " id " + std::to_string(*id) +
                  " is outside the vocabulary (" + std::to_string(size) + " ids)");
    }
    return {};
  };
  for (const auto& [id, what] :
       {std::pair{spec.bos, "bos"}, std::pair{spec.eos, "eos"}, std::pair{spec.unk, "unk"}}) {
    if (auto ok = check_id(id, what); !ok) return ok.err();
  }
  for (const auto* list : {&spec.extra_eos, &spec.prefix, &spec.suffix}) {
    for (const int32_t id : *list) {
      if (auto ok = check_id(id, "special"); !ok) return ok.err();
    }
  }

  tokenizer_parts p;
  std::unordered_map<std::string, int32_t> vocab;
  vocab.reserve(spec.vocab.size());
  p.token_text.resize(static_cast<size_t>(size));
  p.special.assign(static_cast<size_t>(size), 0);
  for (size_t id = 0; id < spec.vocab.size(); ++id) {
    if (spec.vocab[id].empty()) continue;
    vocab[spec.vocab[id]] = static_cast<int32_t>(id);  // a repeated string: the last id wins
    p.token_text[id] = model_token_text(spec, spec.vocab[id]);
  }
  p.norm = normalizer(spec.normalizer);
  std::vector<added_token> raw, normalized;
  for (const auto& t : spec.added) {
    // Added tokens decode to their content as written, whatever the model's alphabet.
    p.token_text[t.id] = t.content;
    p.special[t.id] = t.special ? 1 : 0;
    p.added_ids[t.content] = t.id;
    if (t.normalized && !p.norm.empty()) {
      added_token n = t;
      n.content = p.norm.apply(t.content);
      normalized.push_back(std::move(n));
    } else {
      raw.push_back(t);
    }
  }
  p.raw_added = added_token_matcher(std::move(raw));
  p.normalized_added = added_token_matcher(std::move(normalized));

  bpe_options options;
  options.ignore_merges = spec.ignore_merges;
  options.byte_fallback = spec.byte_fallback;
  options.fuse_unk = spec.fuse_unk;
  options.unk = spec.unk;
  if (!spec.byte_level) options.word_marker = std::string(metaspace);
  auto model = bpe_model::create(std::move(vocab), spec.merges, options, spec.merges_key);
  if (!model) return fail(src + ": " + model.message());
  p.model = std::move(*model);

  auto pre = pre_tokenizer::create(std::move(spec.pre_steps));
  if (!pre) return fail(src + ": " + pre.message());
  p.pre = std::move(*pre);
  p.byte_level = spec.byte_level;
  p.strip_leading_space = spec.decode_strip_leading_space;

  special_tokens& st = p.specials;
  st.bos = spec.bos;
  st.eos = spec.eos;
  st.prefix = spec.prefix;
  st.suffix = spec.suffix;
  const auto add_eos = [&](int32_t id) {
    if (std::find(st.eos_ids.begin(), st.eos_ids.end(), id) == st.eos_ids.end())
      st.eos_ids.push_back(id);
  };
  if (st.eos) add_eos(*st.eos);
  for (const int32_t id : spec.extra_eos) add_eos(id);
  for (const auto name : end_of_turn_names) {
    for (const auto& t : spec.added) {
      if (t.special && t.content == name) add_eos(t.id);
    }
  }
  if (!st.eos && !st.eos_ids.empty()) st.eos = st.eos_ids.front();
  p.chat_template = std::move(spec.chat_template);
  return std::unique_ptr<tokenizer>(new bpe_tokenizer(std::move(p)));
}

}  // namespace troupe::engine
