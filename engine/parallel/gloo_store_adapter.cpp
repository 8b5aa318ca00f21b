// gloo_store_adapter: our rendezvous_store behind Gloo's Store interface. Gloo expects store failures
// as exceptions, so error values become gloo::IoException here (and values again in the communicator).
#include "engine/parallel/gloo_store_adapter.hpp"

#include <cstring>

#include <gloo/common/error.h>

namespace troupe::engine::parallel {

gloo_store_adapter::gloo_store_adapter(rendezvous_store& store, std::string prefix,
                                       std::chrono::milliseconds default_timeout)
    : store_(store), prefix_(std::move(prefix)), default_timeout_(default_timeout) {}

std::string gloo_store_adapter::full_key(const std::string& key) const {
  return prefix_.empty() ? key : prefix_ + "/" + key;
}

void gloo_store_adapter::set(const std::string& key, const std::vector<char>& data) {
  auto done = store_.set(full_key(key), std::as_bytes(std::span<const char>(data)));
  if (!done) throw gloo::IoException(done.message());
}

// Gloo's own stores wait for the key in get; so does this one, bounded by the default timeout.
std::vector<char> gloo_store_adapter::get(const std::string& key) {
  wait({key}, default_timeout_);
  auto value = store_.get(full_key(key));
  if (!value) throw gloo::IoException(value.message());
  std::vector<char> out(value->size());
  if (!out.empty()) std::memcpy(out.data(), value->data(), out.size());
  return out;
}

void gloo_store_adapter::wait(const std::vector<std::string>& keys) { wait(keys, default_timeout_); }

void gloo_store_adapter::wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) {
  std::vector<std::string> full;
  full.reserve(keys.size());
  for (const auto& k : keys) full.push_back(full_key(k));
  // gloo::kNoTimeout (zero) means "no timeout" to Gloo; we never wait unbounded.
  auto done = store_.wait(full, timeout.count() > 0 ? timeout : default_timeout_);
  if (!done) throw gloo::IoException(done.message());
}

}  // namespace troupe::engine::parallel
