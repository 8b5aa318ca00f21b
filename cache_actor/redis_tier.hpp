// The response cache's optional shared tier: a Redis server that several routers read and write, so
// a completion stored through one router is a hit through the others.
//
// Threading: none; blocking. One owner (the cache actor) calls it. Every Redis
// call blocks for at most `timeout` (connect, and each command's send and receive), except that
// resolving a host name (not an IP address) is not bounded by it.
// Failure: never an error to the caller. Redis unreachable, slow or failing is a miss (get) or a
// no-op (set), counted in errors(); the outage is logged once (spdlog::warn) and a reconnect is
// tried at most every `retry_interval`, the tier being skipped in between. A value that is corrupt,
// too large, hostile or another key's (hash collision) is a miss, warned about (at most every 10 s):
// it never crashes, and costs at most max_value_bytes + 1 read and a small multiple of that decoded.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "common/cluster_messages.hpp"

struct redisContext;

namespace troupe::cache {

struct redis_options {
  std::string host;
  uint16_t port = 6379;
  std::chrono::milliseconds timeout{100};
  std::chrono::milliseconds retry_interval{2000};
  int64_t max_value_bytes = int64_t(64) << 20;  // larger values are neither written nor read
};

// The Redis key of a cache key: "troupe:cache:v1:" + 32 hex digits of the XXH3-128 of its bytes (v1:
// the value format, so builds with another format never read these keys).
[[nodiscard]] std::string redis_key(const cluster::cache_key& key);

class redis_tier {
 public:
  // Connects now; a failure is logged and retried on later calls.
  explicit redis_tier(redis_options options);
  ~redis_tier();
  redis_tier(const redis_tier&) = delete;
  redis_tier& operator=(const redis_tier&) = delete;

  struct hit {
    cluster::cache_entry entry;
    std::optional<std::chrono::milliseconds> ttl_left;  // none: the key has no expiry
  };

  // GETRANGE (bounded by max_value_bytes) and PTTL in one round trip; a hit only when the value
  // decodes and holds exactly these key bytes.
  [[nodiscard]] std::optional<hit> get(const cluster::cache_key& key);

  // SET, with EX ttl unless ttl is 0 (then the key never expires: Redis's maxmemory policy bounds it).
  void set(const cluster::cache_key& key, const cluster::cache_entry& entry, std::chrono::seconds ttl);

  // For a periodic timer: reconnects when due, and PINGs a connection idle for retry_interval so an
  // outage shows in connected() without traffic.
  void maintain();

  [[nodiscard]] bool connected() const { return context_ != nullptr; }
  [[nodiscard]] int64_t hits() const { return hits_; }
  [[nodiscard]] int64_t errors() const { return errors_; }  // failed connects and commands, bad values

 private:
  // True when connected (reconnecting first if down and the retry interval has passed).
  bool ensure_connected();
  void connect();
  // Drops the connection after a failure; logs the outage when it starts.
  void disconnect(const std::string& why);
  // Bad values and error replies are warned about at most once per value_warning_interval: a
  // hostile or full Redis must not flood the log at the request rate.
  bool warn_allowed();
  static constexpr std::chrono::seconds value_warning_interval{10};

  redis_options options_;
  std::string where_;  // "host:port", for the log
  redisContext* context_ = nullptr;
  std::chrono::steady_clock::time_point next_attempt_{};
  std::chrono::steady_clock::time_point last_success_{};
  bool outage_logged_ = false;
  std::chrono::steady_clock::time_point next_value_warning_{};
  int64_t hits_ = 0;
  int64_t errors_ = 0;
};

}  // namespace troupe::cache
