// Keys and entries that the response cache tests share: a key from bytes, and a completion with
// tokens, logprobs and a finish reason.
#pragma once

#include <string>
#include <utility>

#include "common/cluster_messages.hpp"

namespace troupe::cache::test {

// The real router hashes with XXH3-64; the tests choose hashes to force collisions.
inline cluster::cache_key key_of(std::string bytes, uint64_t hash = 0) {
  if (hash == 0) hash = std::hash<std::string>{}(bytes);
  return {std::move(bytes), hash};
}

// One sample of `tokens` tokens (ids from `first`), ended by stop; with logprobs when asked.
inline cluster::cache_entry entry_of(int tokens, int32_t first = 1, bool logprobs = false) {
  cluster::token_chunk c;
  c.sample = 0;
  c.finish = finish_reason::stop;
  for (int i = 0; i < tokens; ++i) {
    c.tokens.push_back(first + i);
    if (logprobs) c.logprobs.push_back({first + i, -0.5f * float(i), {first + i, 7}, {-0.5f * float(i), -3.25f}});
  }
  return {{std::move(c)}};
}

inline bool same_entry(const cluster::cache_entry& a, const cluster::cache_entry& b) {
  if (a.samples.size() != b.samples.size()) return false;
  for (size_t i = 0; i < a.samples.size(); ++i) {
    const auto& x = a.samples[i];
    const auto& y = b.samples[i];
    if (x.sample != y.sample || x.tokens != y.tokens || x.finish != y.finish || x.error != y.error ||
        x.logprobs.size() != y.logprobs.size())
      return false;
    for (size_t j = 0; j < x.logprobs.size(); ++j) {
      const auto& p = x.logprobs[j];
      const auto& q = y.logprobs[j];
      if (p.token != q.token || p.logprob != q.logprob || p.top_tokens != q.top_tokens ||
          p.top_logprobs != q.top_logprobs)
        return false;
    }
  }
  return true;
}

}  // namespace troupe::cache::test
