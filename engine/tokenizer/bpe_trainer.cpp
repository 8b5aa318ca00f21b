// A deterministic BPE trainer (make-tiny's tokenizers, and the tokenizer tests' vocabularies):
// pair counts weighted by word frequency and updated incrementally, most frequent pair first
// (ties: smallest ids), so training is linear-ish in the corpus rather than quadratic in the
// merges. Byte-level style: GPT-2 regex words over 256 byte tokens. SentencePiece style: "▁"-led
// words over the corpus's characters, with <0xXX> byte-fallback tokens.
#include <algorithm>
#include <deque>
#include <map>
#include <queue>
#include <set>
#include <unordered_map>

#include "common/json_escape.hpp"
#include "engine/tokenizer/added_tokens.hpp"
#include "engine/tokenizer/byte_level.hpp"
#include "engine/tokenizer/normalizer.hpp"
#include "engine/tokenizer/pre_tokenizer.hpp"
#include "engine/tokenizer/sentencepiece_merges.hpp"
#include "engine/tokenizer/tokenizer.hpp"
#include "engine/tokenizer/tokenizer_spec.hpp"
#include "engine/tokenizer/utf8.hpp"

namespace troupe::engine {
namespace {

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

struct word {
  std::vector<int32_t> symbols;
  int64_t freq;
};

// Highest count on top; equal counts: the smaller pair (left id, then right id) first.
struct candidate {
  int64_t count;
  uint64_t pair;
  bool operator<(const candidate& o) const {
    return count != o.count ? count < o.count : pair > o.pair;
  }
};

struct trained {
  std::vector<std::string> token_bytes;             // by id: the initial tokens, then learned ones
  std::vector<std::pair<int32_t, int32_t>> merges;  // rank order
};

// Learns merges over `words`, whose symbols are ids into `initial`, until `max_tokens` tokens.
trained learn_merges(std::vector<word> words, std::vector<std::string> initial, size_t max_tokens) {
  trained t;
  std::unordered_map<std::string, int32_t> index;
  t.token_bytes = std::move(initial);
  for (size_t id = 0; id < t.token_bytes.size(); ++id)
    index.emplace(t.token_bytes[id], static_cast<int32_t>(id));
  std::unordered_map<uint64_t, int64_t> counts;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;  // pair -> words that may hold it
  for (size_t w = 0; w < words.size(); ++w) {
    const auto& s = words[w].symbols;
    for (size_t k = 0; k + 1 < s.size(); ++k) {
      const uint64_t p = pair_key(s[k], s[k + 1]);
      counts[p] += words[w].freq;
      where[p].push_back(static_cast<int32_t>(w));
    }
  }
  std::priority_queue<candidate> heap;
  for (const auto& [p, c] : counts) heap.push({c, p});

  std::set<uint64_t> merged;
  std::vector<uint64_t> changed;
  std::vector<int32_t> rebuilt;
  while (t.token_bytes.size() < max_tokens && !heap.empty()) {
    const candidate top = heap.top();
    heap.pop();
    const auto cit = counts.find(top.pair);
    const int64_t current = cit == counts.end() ? 0 : cit->second;
    if (current <= 0) continue;
    if (current != top.count) {  // stale: counts of existing pairs only ever drop
      heap.push({current, top.pair});
      continue;
    }
    const auto a = static_cast<int32_t>(top.pair >> 32);
    const auto b = static_cast<int32_t>(top.pair & 0xFFFFFFFFu);
    std::string bytes = t.token_bytes[a] + t.token_bytes[b];
    auto [it, fresh] = index.try_emplace(bytes, static_cast<int32_t>(t.token_bytes.size()));
    const int32_t c = it->second;
    if (fresh) t.token_bytes.push_back(std::move(bytes));
    // A pair formed again after it was merged (possible when two merges spell the same token)
    // is applied to the words but not listed twice: the first rank already covers it.
    if (merged.insert(top.pair).second) t.merges.emplace_back(a, b);

    std::vector<int32_t> list = std::move(where[top.pair]);
    where.erase(top.pair);
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
    changed.clear();
    for (const int32_t w : list) {
      auto& s = words[w].symbols;
      const int64_t f = words[w].freq;
      bool has = false;
      for (size_t k = 0; k + 1 < s.size() && !has; ++k) has = s[k] == a && s[k + 1] == b;
      if (!has) continue;
      for (size_t k = 0; k + 1 < s.size(); ++k) counts[pair_key(s[k], s[k + 1])] -= f;
      rebuilt.clear();
      for (size_t k = 0; k < s.size();) {
        if (k + 1 < s.size() && s[k] == a && s[k + 1] == b) {
          rebuilt.push_back(c);
          k += 2;
        } else {
          rebuilt.push_back(s[k]);
          k += 1;
        }
      }
      s.swap(rebuilt);
      for (size_t k = 0; k + 1 < s.size(); ++k) {
        const uint64_t p = pair_key(s[k], s[k + 1]);
        counts[p] += f;
        if (s[k] == c || s[k + 1] == c) {
          where[p].push_back(w);
          changed.push_back(p);
        }
      }
    }
    counts.erase(top.pair);
    std::sort(changed.begin(), changed.end());
    changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
    for (const uint64_t p : changed) {
      const int64_t n = counts[p];
      if (n > 0) heap.push({n, p});
    }
  }
  return t;
}


// Words of the corpus (between special tokens) with their counts, in a fixed order.
std::vector<std::pair<std::string, int64_t>> count_words(std::string_view corpus,
                                                         const std::vector<added_token>& specials,
                                                         const pre_tokenizer& pre) {
  const added_token_matcher matcher(specials);
  std::vector<added_token_matcher::segment> segments;
  matcher.split(corpus, true, segments);
  std::map<std::string, int64_t> counts;  // ordered: a fixed order, whatever the input
  std::vector<std::string_view> pieces;
  std::deque<std::string> storage;
  for (const auto& seg : segments) {
    if (seg.id >= 0) continue;
    pieces.clear();
    storage.clear();
    pre.split(seg.text, true, pieces, storage);
    for (const auto p : pieces) ++counts[std::string(p)];
  }
  return {counts.begin(), counts.end()};
}

// Completes the vocabulary with "<|reserved_special_token_N|>" specials (as Llama 3 does) when the
// corpus ran out of pairs before the model reached its share.
void fill_reserved(std::vector<std::string>& added, size_t model_size, size_t vocab_size) {
  const std::set<std::string> taken(added.begin(), added.end());
  for (int64_t n = 0; model_size + added.size() < vocab_size; ++n) {
    std::string name = "<|reserved_special_token_" + std::to_string(n) + "|>";
    if (!taken.count(name)) added.push_back(std::move(name));
  }
}

void append_added_tokens(std::string& out, const std::vector<std::pair<int32_t, std::string>>& added) {
  out += "  \"added_tokens\": [";
  for (size_t i = 0; i < added.size(); ++i) {
    out += i ? ",\n    " : "\n    ";
    out += "{\"id\": " + std::to_string(added[i].first) + ", \"content\": ";
    append_json_string(out, added[i].second);
    out +=
        ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, "
        "\"special\": true}";
  }
  out += added.empty() ? "],\n" : "\n  ],\n";
}

// The model section: vocabulary (spelled by `spell`) and merges as [left, right] pairs.
template <typename Spell>
void append_model(std::string& out, const std::vector<std::string>& vocab,
                  const std::vector<std::pair<std::string, std::string>>& merges, bool sentencepiece,
                  bool ignore_merges, Spell&& spell) {
  out += "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n";
  out += sentencepiece ? "    \"unk_token\": \"<unk>\",\n" : "    \"unk_token\": null,\n";
  out += "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n";
  out += sentencepiece ? "    \"fuse_unk\": true,\n    \"byte_fallback\": true,\n"
                       : "    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n";
  out += ignore_merges ? "    \"ignore_merges\": true,\n    \"vocab\": {"
                       : "    \"ignore_merges\": false,\n    \"vocab\": {";
  for (size_t id = 0; id < vocab.size(); ++id) {
    out += id ? ",\n      " : "\n      ";
    append_json_string(out, spell(vocab[id]));
    out += ": " + std::to_string(id);
  }
  out += "\n    },\n    \"merges\": [";
  for (size_t i = 0; i < merges.size(); ++i) {
    out += i ? ",\n      [" : "\n      [";
    append_json_string(out, spell(merges[i].first));
    out += ", ";
    append_json_string(out, spell(merges[i].second));
    out += "]";
  }
  out += merges.empty() ? "]\n  }\n}\n" : "\n    ]\n  }\n}\n";
}

// A whole tokenizer.json: `fixed_added` (ids given) and then `added` right after the model
// vocabulary as special added tokens, the pipeline sections as given, then the model.
template <typename Spell>
std::string write_tokenizer_json(const std::vector<std::string>& vocab,
                                 const std::vector<std::pair<std::string, std::string>>& merges,
                                 std::vector<std::pair<int32_t, std::string>> fixed_added,
                                 const std::vector<std::string>& added, std::string_view pipeline,
                                 bool sentencepiece, bool ignore_merges, Spell&& spell) {
  for (size_t i = 0; i < added.size(); ++i)
    fixed_added.emplace_back(static_cast<int32_t>(vocab.size() + i), added[i]);
  std::string out;
  out.reserve(vocab.size() * 24 + merges.size() * 24 + fixed_added.size() * 130 + pipeline.size());
  out += "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n";
  append_added_tokens(out, fixed_added);
  out += pipeline;
  append_model(out, vocab, merges, sentencepiece, ignore_merges, spell);
  return out;
}

// A byte-level layout: 256 byte tokens + merges over the words of the style's regex (NFC applied
// first for Qwen2); specials as added tokens.
expected<std::string> train_byte_level(std::string_view corpus, size_t vocab_size,
                                       const std::vector<added_token>& specials,
                                       std::vector<std::string>& added, tokenizer_style style) {
  const std::string_view pattern = style == tokenizer_style::llama3  ? llama3_split_pattern
                                   : style == tokenizer_style::qwen2 ? qwen2_split_pattern
                                                                     : gpt2_split_pattern;
  std::string nfc_corpus;
  if (style == tokenizer_style::qwen2) {
    normalizer_step nfc;
    nfc.what = normalizer_step::kind::nfc;
    nfc_corpus = normalizer({nfc}).apply(corpus);
    corpus = nfc_corpus;
  }
  auto pre = pre_tokenizer::create({regex_split_step(std::string(pattern), "")});
  if (!pre) return pre.err();
  std::vector<word> words;
  for (const auto& [text, n] : count_words(corpus, specials, *pre)) {
    word w{{}, n};
    for (const char ch : text) w.symbols.push_back(static_cast<unsigned char>(ch));
    words.push_back(std::move(w));
  }
  std::vector<std::string> bytes;
  for (int b = 0; b < 256; ++b) bytes.emplace_back(1, static_cast<char>(b));
  const trained t =
      learn_merges(std::move(words), std::move(bytes), vocab_size - added.size());
  fill_reserved(added, t.token_bytes.size(), vocab_size);
  std::vector<std::pair<std::string, std::string>> merges;
  for (const auto& [a, b] : t.merges) merges.emplace_back(t.token_bytes[a], t.token_bytes[b]);

  std::string pipeline = style == tokenizer_style::qwen2 ? "  \"normalizer\": {\"type\": \"NFC\"},\n"
                                                         : "  \"normalizer\": null,\n";
  if (style == tokenizer_style::byte_level) {
    pipeline +=
        "  \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
        "\"trim_offsets\": true, \"use_regex\": true},\n";
  } else {
    pipeline += "  \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": "
                "\"Split\", \"pattern\": {\"Regex\": ";
    append_json_string(pipeline, pattern);
    pipeline +=
        "}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", "
        "\"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false}]},\n";
  }
  pipeline +=
      "  \"post_processor\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, "
      "\"trim_offsets\": false, \"use_regex\": true},\n"
      "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": "
      "true, \"use_regex\": true},\n";
  return write_tokenizer_json(t.token_bytes, merges, {}, added, pipeline, false,
                              style == tokenizer_style::llama3,
                              [](const std::string& bytes) { return byte_level_encode(bytes); });
}

// Llama 2's layout: <unk> <s> </s>, <0x00>..<0xFF>, the corpus's characters (most frequent first),
// merges over "▁"-led words, rewritten as every split of every token in id order (the form
// Hugging Face derives from a SentencePiece model, so the GGUF "llama" form is exact).
expected<std::string> train_sentencepiece(std::string_view corpus, size_t vocab_size,
                                          const std::vector<added_token>& specials,
                                          std::vector<std::string>& added) {
  const size_t model_tokens = vocab_size - added.size();
  const std::string space(metaspace);
  // Words as the legacy normalizer spells them, cut before each "▁".
  pre_step words_step;
  words_step.what = pre_step::kind::metaspace;
  words_step.replacement = space;
  auto pre = pre_tokenizer::create({words_step});
  if (!pre) return pre.err();
  const auto counted = count_words(corpus, specials, *pre);

  std::vector<std::string> vocab = {"<unk>", "<s>", "</s>"};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab.emplace_back(name);
  }
  const size_t base = vocab.size();
  if (model_tokens < base + 1) {
    return fail("vocab_size leaves no room for characters after <unk> <s> </s> and 256 bytes");
  }
  // Characters by frequency (ties: by their bytes), at most half the room left, so merges get
  // the other half; the rest fall back to bytes.
  std::map<std::string, int64_t> char_counts;
  for (const auto& [text, n] : counted) {
    for (size_t i = 0; i < text.size();) {
      const auto seq = utf8_check(text, i);
      char_counts[text.substr(i, seq.length)] += n;
      i += seq.length;
    }
  }
  std::vector<std::pair<std::string, int64_t>> chars(char_counts.begin(), char_counts.end());
  std::stable_sort(chars.begin(), chars.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  const size_t room = std::max<size_t>(1, (model_tokens - base + 1) / 2);
  std::unordered_map<std::string, int32_t> char_ids;
  for (size_t i = 0; i < chars.size() && i < room; ++i) {
    char_ids.emplace(chars[i].first, static_cast<int32_t>(vocab.size()));
    vocab.push_back(chars[i].first);
  }
  std::vector<word> words;
  for (const auto& [text, n] : counted) {
    // A word with a character outside the vocabulary is left out of merge learning (it will be
    // encoded with byte fallback), as SentencePiece does with characters below its coverage.
    word w{{}, n};
    bool known = true;
    for (size_t i = 0; i < text.size() && known;) {
      const auto seq = utf8_check(text, i);
      const auto it = char_ids.find(text.substr(i, seq.length));
      known = it != char_ids.end();
      if (known) w.symbols.push_back(it->second);
      i += seq.length;
    }
    if (known) words.push_back(std::move(w));
  }
  const trained t = learn_merges(std::move(words), std::move(vocab), model_tokens);
  fill_reserved(added, t.token_bytes.size(), vocab_size);
  std::vector<float> scores(t.token_bytes.size());
  std::vector<bool> mergeable(t.token_bytes.size(), true);
  for (size_t id = 0; id < t.token_bytes.size(); ++id) {
    scores[id] = -static_cast<float>(id);
    mergeable[id] = id >= base;
  }
  const auto merges = merges_from_scores(t.token_bytes, scores, mergeable);

  return write_tokenizer_json(
      t.token_bytes, merges, {{0, "<unk>"}, {1, "<s>"}, {2, "</s>"}}, added,
      "  \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", "
      "\"prepend\": \"\u2581\"}, {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, "
      "\"content\": \"\u2581\"}]},\n"
      "  \"pre_tokenizer\": null,\n"
      "  \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": "
      "{\"id\": \"<s>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], "
      "\"pair\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": "
      "\"A\", \"type_id\": 0}}, {\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 1}}, "
      "{\"Sequence\": {\"id\": \"B\", \"type_id\": 1}}], \"special_tokens\": {\"<s>\": {\"id\": "
      "\"<s>\", \"ids\": [1], \"tokens\": [\"<s>\"]}}},\n"
      "  \"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", "
      "\"pattern\": {\"String\": \"\u2581\"}, \"content\": \" \"}, {\"type\": \"ByteFallback\"}, "
      "{\"type\": \"Fuse\"}, {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": "
      "0}]},\n",
      true, false, [](const std::string& s) { return s; });
}

}  // namespace

expected<std::string> train_bpe_tokenizer_json(std::string_view corpus, int32_t vocab_size,
                                               const std::vector<std::string>& specials,
                                               tokenizer_style style) {
  const std::string who = "train_bpe_tokenizer_json: ";
  const bool sentencepiece = style == tokenizer_style::sentencepiece;
  const size_t fixed = sentencepiece ? 259 : 256;
  if (vocab_size < 0 || static_cast<size_t>(vocab_size) < fixed + specials.size()) {
    return fail(who + "vocab_size " + std::to_string(vocab_size) + " is smaller than " +
                std::to_string(fixed) + " fixed tokens + " + std::to_string(specials.size()) +
                " specials");
  }
  if (vocab_size > max_token_id + 1) {
    return fail(who + "vocab_size " + std::to_string(vocab_size) + " is larger than " +
                std::to_string(max_token_id + 1));
  }
  std::set<std::string> special_set;
  std::vector<added_token> special_tokens;
  if (sentencepiece) special_set = {"<unk>", "<s>", "</s>"};
  for (const auto& s : specials) {
    if (s.empty() || !utf8_is_valid(s))
      return fail(who + "special token \"" + s + "\" is empty or not UTF-8");
    if (!special_set.insert(s).second)
      return fail(who + "special token \"" + s + "\" is given twice (or is built in)");
    added_token t;
    t.content = s;
    t.special = true;
    special_tokens.push_back(std::move(t));
  }
  std::vector<std::string> added(specials.begin(), specials.end());
  const auto size = static_cast<size_t>(vocab_size);
  auto json = sentencepiece ? train_sentencepiece(corpus, size, special_tokens, added)
                            : train_byte_level(corpus, size, special_tokens, added, style);
  if (!json) return fail(who + json.message());
  return json;
}

}  // namespace troupe::engine
