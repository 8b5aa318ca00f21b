// A deterministic byte-level BPE trainer (make-tiny's tokenizer): GPT-2 regex words, pair counts
// weighted by word frequency and updated incrementally, most frequent pair first (ties: smallest
// ids), so training is linear-ish in the corpus rather than quadratic in the merges.
#include <algorithm>
#include <deque>
#include <queue>
#include <set>
#include <unordered_map>

#include "engine/tokenizer/added_tokens.hpp"
#include "engine/tokenizer/bpe_spec.hpp"
#include "engine/tokenizer/byte_level.hpp"
#include "common/json_escape.hpp"
#include "engine/tokenizer/pre_tokenizer.hpp"
#include "engine/tokenizer/tokenizer.hpp"
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
  std::vector<std::string> token_bytes;             // by id: 256 bytes, then learned tokens
  std::vector<std::pair<int32_t, int32_t>> merges;  // rank order
};

trained learn_merges(std::vector<word> words, size_t max_tokens) {
  trained t;
  std::unordered_map<std::string, int32_t> index;
  for (int b = 0; b < 256; ++b) {
    t.token_bytes.emplace_back(1, static_cast<char>(b));
    index.emplace(t.token_bytes.back(), b);
  }
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

}  // namespace

expected<std::string> train_bpe_tokenizer_json(std::string_view corpus, int32_t vocab_size,
                                               const std::vector<std::string>& specials) {
  const std::string who = "train_bpe_tokenizer_json: ";
  if (vocab_size < 0 || static_cast<size_t>(vocab_size) < 256 + specials.size()) {
    return fail(who + "vocab_size " + std::to_string(vocab_size) +
                " is smaller than 256 byte tokens + " + std::to_string(specials.size()) +
                " specials");
  }
  if (vocab_size > max_token_id + 1) {
    return fail(who + "vocab_size " + std::to_string(vocab_size) + " is larger than " +
                std::to_string(max_token_id + 1));
  }
  std::set<std::string> special_set;
  std::vector<added_token> special_tokens;
  for (const auto& s : specials) {
    if (s.empty() || !utf8_is_valid(s))
      return fail(who + "special token \"" + s + "\" is empty or not UTF-8");
    if (!special_set.insert(s).second)
      return fail(who + "special token \"" + s + "\" is given twice");
    added_token t;
    t.content = s;
    t.special = true;
    special_tokens.push_back(std::move(t));
  }

  // Words: the corpus between special tokens, cut by the GPT-2 regex, counted.
  auto re = regex_splitter::create(std::string(gpt2_split_pattern));
  if (!re) return fail(who + re.message());
  const pre_tokenizer pre(
      {pre_tokenizer_step{std::shared_ptr<const regex_splitter>(std::move(*re))}});
  const added_token_matcher matcher(special_tokens);
  std::vector<added_token_matcher::segment> segments;
  matcher.split(corpus, true, segments);
  std::unordered_map<std::string_view, int64_t> word_counts;
  std::vector<std::string_view> pieces;
  std::deque<std::string> storage;  // stays empty: the GPT-2 step never copies
  for (const auto& seg : segments) {
    if (seg.id >= 0) continue;
    pieces.clear();
    pre.split(seg.text, pieces, storage);
    for (const auto p : pieces) ++word_counts[p];
  }
  std::vector<std::pair<std::string_view, int64_t>> sorted(word_counts.begin(), word_counts.end());
  std::sort(sorted.begin(), sorted.end());  // a fixed order, whatever the hash map did
  std::vector<word> words;
  words.reserve(sorted.size());
  for (const auto& [text, n] : sorted) {
    word w{{}, n};
    for (const char ch : text) w.symbols.push_back(static_cast<unsigned char>(ch));
    words.push_back(std::move(w));
  }

  const size_t model_tokens = static_cast<size_t>(vocab_size) - specials.size();
  const trained t = learn_merges(std::move(words), model_tokens);

  // Added tokens: the given specials right after the model vocabulary, then reserved fill.
  std::vector<std::string> added;
  added.insert(added.end(), specials.begin(), specials.end());
  for (int64_t n = 0; t.token_bytes.size() + added.size() < static_cast<size_t>(vocab_size); ++n) {
    std::string name = "<|reserved_special_token_" + std::to_string(n) + "|>";
    if (!special_set.count(name)) added.push_back(std::move(name));
  }

  std::string out;
  out.reserve(t.token_bytes.size() * 24 + t.merges.size() * 24 + added.size() * 130);
  out +=
      "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  "
      "\"added_tokens\": [";
  for (size_t i = 0; i < added.size(); ++i) {
    out += i ? ",\n    " : "\n    ";
    out += "{\"id\": " + std::to_string(t.token_bytes.size() + i) + ", \"content\": ";
    append_json_string(out, added[i]);
    out +=
        ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, "
        "\"special\": true}";
  }
  out += added.empty() ? "],\n" : "\n  ],\n";
  out +=
      "  \"normalizer\": null,\n"
      "  \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
      "\"trim_offsets\": true, "
      "\"use_regex\": true},\n"
      "  \"post_processor\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, "
      "\"trim_offsets\": false, "
      "\"use_regex\": true},\n"
      "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": "
      "true, "
      "\"use_regex\": true},\n"
      "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n"
      "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n"
      "    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n"
      "    \"vocab\": {";
  for (size_t id = 0; id < t.token_bytes.size(); ++id) {
    out += id ? ",\n      " : "\n      ";
    append_json_string(out, byte_level_encode(t.token_bytes[id]));
    out += ": " + std::to_string(id);
  }
  out += "\n    },\n    \"merges\": [";
  for (size_t i = 0; i < t.merges.size(); ++i) {
    out += i ? ",\n      [" : "\n      [";
    append_json_string(out, byte_level_encode(t.token_bytes[t.merges[i].first]));
    out += ", ";
    append_json_string(out, byte_level_encode(t.token_bytes[t.merges[i].second]));
    out += "]";
  }
  out += t.merges.empty() ? "]\n  }\n}\n" : "\n    ]\n  }\n}\n";
  return out;
}

}  // namespace troupe::engine
