// Derives the complete, score-ordered merge list of a SentencePiece BPE vocabulary.
#include "engine/tokenizer/sentencepiece_merges.hpp"

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <unordered_map>

namespace troupe::engine {

std::vector<std::pair<std::string, std::string>> merges_from_scores(
    const std::vector<std::string>& vocab, const std::vector<float>& scores,
    const std::vector<bool>& mergeable) {
  std::unordered_map<std::string_view, int32_t> ids;
  ids.reserve(vocab.size());
  for (size_t id = 0; id < vocab.size(); ++id) {
    if (!vocab[id].empty()) ids.try_emplace(vocab[id], static_cast<int32_t>(id));
  }
  struct candidate {
    float score;
    int32_t merged;
    int32_t left;
    int32_t right;
  };
  std::vector<candidate> found;
  for (size_t t = 0; t < vocab.size(); ++t) {
    if (!mergeable[t]) continue;
    const std::string_view s = vocab[t];
    for (size_t cut = 1; cut < s.size(); ++cut) {
      if ((static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) continue;  // inside a character
      const auto l = ids.find(s.substr(0, cut));
      if (l == ids.end()) continue;
      const auto r = ids.find(s.substr(cut));
      if (r == ids.end()) continue;
      found.push_back({scores[t], static_cast<int32_t>(t), l->second, r->second});
    }
  }
  std::sort(found.begin(), found.end(), [](const candidate& a, const candidate& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.left != b.left) return a.left < b.left;
    return a.right < b.right;
  });
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(found.size());
  for (const auto& c : found) merges.emplace_back(vocab[c.left], vocab[c.right]);
  return merges;
}

}  // namespace troupe::engine
