// The byte-level BPE tokenizer: added-token splitting, then the pre-tokenizer, then byte-level
// spelling and the BPE model per word; decoding maps each token back to its bytes.
#include <algorithm>
#include <deque>
#include <unordered_map>

#include "engine/tokenizer/bpe_model.hpp"
#include "engine/tokenizer/bpe_spec.hpp"
#include "engine/tokenizer/byte_level.hpp"
#include "engine/tokenizer/pre_tokenizer.hpp"

namespace troupe::engine {
namespace {

class byte_bpe_tokenizer final : public tokenizer {
 public:
  byte_bpe_tokenizer(std::unique_ptr<bpe_model> model, pre_tokenizer pre, added_token_matcher added,
                     std::vector<std::string> token_bytes, std::vector<uint8_t> special,
                     special_tokens specials)
      : model_(std::move(model)),
        pre_(std::move(pre)),
        added_(std::move(added)),
        token_bytes_(std::move(token_bytes)),
        special_(std::move(special)),
        specials_(std::move(specials)) {
    for (const auto& t : added_.tokens()) added_ids_[t.content] = t.id;
  }

  std::vector<int32_t> encode(std::string_view text, bool add_special,
                              bool parse_special) const override {
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 2);
    if (add_special && specials_.add_bos && specials_.bos) ids.push_back(*specials_.bos);
    std::vector<added_token_matcher::segment> segments;
    added_.split(text, parse_special, segments);
    std::vector<std::string_view> words;
    std::deque<std::string> storage;
    for (const auto& seg : segments) {
      if (seg.id >= 0) {
        ids.push_back(seg.id);
        continue;
      }
      words.clear();
      storage.clear();
      pre_.split(seg.text, words, storage);
      for (const auto word : words) model_->encode_word(byte_level_encode(word), ids);
    }
    return ids;
  }

  std::string token_bytes(int32_t id) const override {
    if (id < 0 || id >= vocab_size()) return {};
    return token_bytes_[id];
  }

  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const override {
    std::string out;
    for (const int32_t id : ids) {
      if (id < 0 || id >= vocab_size()) continue;
      if (skip_special && special_[id]) continue;
      out += token_bytes_[id];
    }
    return out;
  }

  int32_t vocab_size() const override { return static_cast<int32_t>(token_bytes_.size()); }

  bool is_special(int32_t id) const override {
    return id >= 0 && id < vocab_size() && special_[id] != 0;
  }

  const special_tokens& specials() const override { return specials_; }

  std::optional<int32_t> token_id(std::string_view token) const override {
    const std::string key(token);
    if (const auto it = added_ids_.find(key); it != added_ids_.end()) return it->second;
    if (const auto it = model_->vocab().find(key); it != model_->vocab().end()) return it->second;
    return std::nullopt;
  }

 private:
  std::unique_ptr<bpe_model> model_;
  pre_tokenizer pre_;
  added_token_matcher added_;
  std::vector<std::string> token_bytes_;  // per id: the raw bytes it decodes to
  std::vector<uint8_t> special_;          // per id: 1 for special (control) tokens
  special_tokens specials_;
  std::unordered_map<std::string, int32_t> added_ids_;
};

}  // namespace

expected<std::unique_ptr<tokenizer>> make_byte_bpe_tokenizer(bpe_spec spec) {
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
  for (const int32_t id : spec.extra_eos) {
    if (auto ok = check_id(id, "end-of-turn"); !ok) return ok.err();
  }

  std::unordered_map<std::string, int32_t> vocab;
  vocab.reserve(spec.vocab.size());
  std::vector<std::string> bytes(static_cast<size_t>(size));
  std::vector<uint8_t> special(static_cast<size_t>(size), 0);
  for (size_t id = 0; id < spec.vocab.size(); ++id) {
    if (spec.vocab[id].empty()) continue;
    vocab[spec.vocab[id]] = static_cast<int32_t>(id);  // a repeated string: the last id wins
    bytes[id] = byte_level_decode(spec.vocab[id]);
  }
  for (const auto& t : spec.added) {
    bytes[t.id] = byte_level_decode(t.content);
    special[t.id] = t.special ? 1 : 0;
  }

  auto model = bpe_model::create(std::move(vocab), spec.merges, spec.ignore_merges, spec.unk,
                                 spec.merges_key);
  if (!model) return fail(src + ": " + model.message());

  std::vector<pre_tokenizer_step> steps;
  for (const auto& step : spec.pre_steps) {
    if (step.prefix_space) {
      steps.push_back({nullptr});
      continue;
    }
    auto re = regex_splitter::create(step.pattern);
    if (!re) return fail(src + ": " + step.key + ": " + re.message());
    steps.push_back({std::shared_ptr<const regex_splitter>(std::move(*re))});
  }

  special_tokens st;
  st.bos = spec.bos;
  st.eos = spec.eos;
  st.add_bos = spec.add_bos && spec.bos.has_value();
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

  return std::unique_ptr<tokenizer>(
      new byte_bpe_tokenizer(std::move(*model), pre_tokenizer(std::move(steps)),
                             added_token_matcher(std::move(spec.added)), std::move(bytes),
                             std::move(special), std::move(st)));
}

}  // namespace troupe::engine
