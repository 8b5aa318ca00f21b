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

bool cacheable(const request& r, bool allow_nondeterministic) {
  return allow_nondeterministic || deterministic(r.sampling);
}

cluster::cache_key make_cache_key(std::string_view revision, const request& r) {
  const sampling_params& s = r.sampling;
  std::string k;
  k.reserve(128 + r.prompt.size() * 4);
  k.append("troupe-cache-v1");
  put_bytes(k, revision);
  put<uint64_t>(k, r.prompt.size());
  for (int32_t t : r.prompt) put(k, t);
  put(k, r.max_tokens);
  put(k, s.temperature);
  put(k, s.top_p);
  put(k, s.top_k);
  put(k, s.min_p);
  put(k, s.repetition_penalty);
  put(k, s.presence_penalty);
  put(k, s.frequency_penalty);
  put<uint8_t>(k, s.seed.has_value());
  put(k, s.seed.value_or(0));
  put(k, s.logprobs);
  put<uint64_t>(k, r.stop.token_ids.size());
  for (int32_t t : r.stop.token_ids) put(k, t);
  put<uint8_t>(k, r.stop.ignore_eos);
  put(k, r.n);
  put<uint64_t>(k, r.stop.strings.size());
  for (const auto& text : r.stop.strings) put_bytes(k, text);
  put<uint8_t>(k, r.skip_special_tokens);
  cluster::cache_key key;
  key.hash = XXH3_64bits(k.data(), k.size());
  key.bytes = std::move(k);
  return key;
}

}  // namespace troupe::router
