// Cache keys (see cache_key.hpp).
#include "router/cache_key.hpp"

#include <xxhash.h>

#include <cstring>

namespace troupe::router {

namespace {

template <class T>
void put(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}

void put_bytes(std::string& out, std::string_view s) {
  put<uint64_t>(out, s.size());
  out.append(s);
}

}  // namespace

bool cacheable(const cluster::generate_request& r, bool allow_nondeterministic) {
  return allow_nondeterministic || r.temperature == 0.0f || r.has_seed;
}

cluster::cache_key make_cache_key(std::string_view revision, const cluster::generate_request& r,
                                  const std::vector<std::string>& stop, bool skip_special_tokens) {
  std::string k;
  k.reserve(128 + r.prompt.size() * 4);
  k.append("troupe-cache-v1");
  put_bytes(k, revision);
  put<uint64_t>(k, r.prompt.size());
  for (int32_t t : r.prompt) put(k, t);
  put(k, r.max_tokens);
  put(k, r.temperature);
  put(k, r.top_p);
  put(k, r.top_k);
  put(k, r.min_p);
  put(k, r.repetition_penalty);
  put(k, r.presence_penalty);
  put(k, r.frequency_penalty);
  put<uint8_t>(k, r.has_seed);
  put(k, r.has_seed ? r.seed : uint64_t(0));
  put(k, r.logprobs);
  put<uint64_t>(k, r.stop_token_ids.size());
  for (int32_t t : r.stop_token_ids) put(k, t);
  put<uint8_t>(k, r.ignore_eos);
  put(k, r.n);
  put<uint64_t>(k, stop.size());
  for (const auto& s : stop) put_bytes(k, s);
  put<uint8_t>(k, skip_special_tokens);
  cluster::cache_key key;
  key.hash = XXH3_64bits(k.data(), k.size());
  key.bytes = std::move(k);
  return key;
}

}  // namespace troupe::router
