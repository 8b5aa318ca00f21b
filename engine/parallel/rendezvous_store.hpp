// The small key/value store that ranks of a shard group meet through to exchange their addresses
// (Gloo) before any collective runs: in-process (thread ranks) and file-backed (process ranks).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/expected.hpp"

namespace troupe::engine::parallel {

// Write-once keys, read by anyone: each rank sets its own keys and waits for its peers'. This is
// all a backing needs to offer, so a store behind CAF messages to the group leader (a later step)
// implements these three calls and nothing else.
//
// Contract for implementations:
//  - set publishes `value` under `key`; setting an existing key replaces it (rendezvous never
//    does; a store may treat it as an error instead).
//  - wait returns once every key is present, or an error naming the first missing key once
//    `timeout` has passed; it never blocks longer than that.
//  - get returns the value of a present key, and an error for a missing one (it does not wait).
//  - Keys are short printable strings ("group/3/1"); values are opaque bytes (up to a few KiB).
//  - Every call is safe from several threads at once (thread ranks share one store).
class rendezvous_store {
 public:
  virtual ~rendezvous_store() = default;
  [[nodiscard]] virtual expected<void> set(const std::string& key, std::span<const std::byte> value) = 0;
  [[nodiscard]] virtual expected<std::vector<std::byte>> get(const std::string& key) = 0;
  [[nodiscard]] virtual expected<void> wait(const std::vector<std::string>& keys,
                                            std::chrono::milliseconds timeout) = 0;
};

// wait() for stores that cannot block on a key: calls `lookup(key)` every `interval` until it
// succeeds for every key; after `timeout`, an error naming the first missing key, the timeout and
// the last lookup's error.
[[nodiscard]] expected<void> poll_for_keys(const std::vector<std::string>& keys, std::chrono::milliseconds timeout,
                                           std::chrono::milliseconds interval,
                                           const std::function<expected<void>(const std::string&)>& lookup);

// Keys in memory, for ranks that are threads of one process (share it through the shared_ptr).
[[nodiscard]] std::shared_ptr<rendezvous_store> make_memory_store();

// Keys as files in `directory` (created if missing), for ranks that are processes on one host or
// on hosts sharing a file system. A value is written to a temporary file and renamed, so a reader
// sees it whole or not at all; waiting polls every few milliseconds. Keys are escaped into file
// names. Use a fresh directory per rendezvous: leftover files from an earlier group would be read.
[[nodiscard]] expected<std::shared_ptr<rendezvous_store>> make_file_store(const std::string& directory);

}  // namespace troupe::engine::parallel
