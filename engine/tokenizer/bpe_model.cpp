// BPE merging with a min-heap of candidate pairs over a linked list of symbols: O(n log n) per
// word, and equal ranks are merged leftmost first, as Hugging Face's BPE does.
#include "engine/tokenizer/bpe_model.hpp"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <mutex>
#include <queue>

namespace troupe::engine {
namespace {

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

size_t utf8_char_length(std::string_view s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  size_t n = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
  return std::min(n, s.size() - i);
}

}  // namespace

expected<std::unique_ptr<bpe_model>> bpe_model::create(
    std::unordered_map<std::string, int32_t> vocab,
    const std::vector<std::pair<std::string, std::string>>& merges, const bpe_options& options,
    const std::string& merges_key) {
  std::unique_ptr<bpe_model> m(new bpe_model());
  m->vocab_ = std::move(vocab);
  m->options_ = options;
  if (!options.word_marker.empty()) {
    // Cutting is exact unless some token has the marker after a character that is not the
    // marker (a merge would have to cross the cut to make it).
    const std::string& mk = options.word_marker;
    m->cut_at_marker_ = true;
    for (const auto& [token, id] : m->vocab_) {
      for (size_t at = token.find(mk, 1); at != std::string::npos; at = token.find(mk, at + 1)) {
        if (at < mk.size() || token.compare(at - mk.size(), mk.size(), mk) != 0) {
          m->cut_at_marker_ = false;
          break;
        }
      }
      if (!m->cut_at_marker_) break;
    }
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    const auto it = m->vocab_.find(name);
    m->byte_ids_[b] = it == m->vocab_.end() ? -1 : it->second;
  }
  m->merges_.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) {
    const std::string& left = merges[r].first;
    const std::string& right = merges[r].second;
    const auto where = [&]() {
      return merges_key + "[" + std::to_string(r) + "] \"" + left + " " + right + "\"";
    };
    const auto a = m->vocab_.find(left);
    if (a == m->vocab_.end()) return fail(where() + ": \"" + left + "\" is not in the vocabulary");
    const auto b = m->vocab_.find(right);
    if (b == m->vocab_.end()) return fail(where() + ": \"" + right + "\" is not in the vocabulary");
    const auto c = m->vocab_.find(left + right);
    if (c == m->vocab_.end()) {
      return fail(where() + ": the merged token \"" + left + right + "\" is not in the vocabulary");
    }
    // A repeated pair keeps its first (best) rank, as llama.cpp does (Hugging Face keeps the last;
    // no real vocabulary repeats a merge).
    m->merges_.try_emplace(pair_key(a->second, b->second),
                           merge_result{static_cast<int32_t>(r), c->second});
  }
  return m;
}

void bpe_model::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (!cut_at_marker_ || word.size() <= cache_max_word) {
    encode_piece(word, out);
    return;
  }
  // Cut before each marker that follows something other than the marker.
  const std::string& mk = options_.word_marker;
  size_t start = 0;
  for (size_t at = word.find(mk, 1); at != std::string_view::npos; at = word.find(mk, at + 1)) {
    if (at >= mk.size() && word.compare(at - mk.size(), mk.size(), mk) == 0) continue;
    encode_piece(word.substr(start, at - start), out);
    start = at;
  }
  encode_piece(word.substr(start), out);
}

void bpe_model::encode_piece(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    // Llama 3: a word that is itself a vocabulary token is that token, whatever the merges say.
    const auto it = vocab_.find(std::string(word));
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const bool cacheable = word.size() <= cache_max_word;
  if (cacheable) {
    std::shared_lock lock(cache_mutex_);
    const auto it = cache_.find(std::string(word));
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t start = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::vector<int32_t> ids(out.begin() + static_cast<std::ptrdiff_t>(start), out.end());
    std::unique_lock lock(cache_mutex_);
    if (cache_.size() >= cache_max_entries) cache_.clear();
    cache_.emplace(std::string(word), std::move(ids));
  }
}

void bpe_model::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  struct symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool alive;
  };
  std::vector<symbol> syms;
  syms.reserve(word.size());
  const auto add = [&](int32_t id) {
    const auto idx = static_cast<int32_t>(syms.size());
    syms.push_back({id, idx - 1, idx + 1, true});
  };
  std::string ch;
  bool last_unk = false;  // the previous symbol came from an unknown character
  for (size_t i = 0; i < word.size();) {
    const size_t n = utf8_char_length(word, i);
    ch.assign(word.substr(i, n));
    i += n;
    if (const auto it = vocab_.find(ch); it != vocab_.end()) {
      add(it->second);
      last_unk = false;
      continue;
    }
    if (options_.byte_fallback) {
      bool all = true;
      for (const char c : ch) all = all && byte_ids_[static_cast<unsigned char>(c)] >= 0;
      if (all) {
        for (const char c : ch) add(byte_ids_[static_cast<unsigned char>(c)]);
        last_unk = false;
        continue;
      }
    }
    if (!options_.unk) continue;
    if (!(options_.fuse_unk && last_unk)) add(*options_.unk);
    last_unk = true;
  }
  if (syms.empty()) return;
  syms.back().next = -1;

  struct candidate {
    int32_t rank;
    int32_t pos;  // index of the left symbol
    int32_t left;
    int32_t right;
    bool operator>(const candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<candidate, std::vector<candidate>, std::greater<>> heap;
  const auto consider = [&](int32_t pos) {
    const int32_t nx = syms[pos].next;
    if (nx < 0) return;
    const auto it = merges_.find(pair_key(syms[pos].id, syms[nx].id));
    if (it != merges_.end()) heap.push({it->second.rank, pos, syms[pos].id, syms[nx].id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(syms.size()); ++i) consider(i);

  while (!heap.empty()) {
    const candidate c = heap.top();
    heap.pop();
    symbol& l = syms[c.pos];
    // Stale candidates (a side already merged into something else) are skipped.
    if (!l.alive || l.id != c.left || l.next < 0 || syms[l.next].id != c.right) continue;
    const auto it = merges_.find(pair_key(c.left, c.right));
    symbol& r = syms[l.next];
    l.id = it->second.id;
    r.alive = false;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = c.pos;
    if (l.prev >= 0) consider(l.prev);
    consider(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = syms[i].next) out.push_back(syms[i].id);
}

}  // namespace troupe::engine
