// The Redis tier of the response cache over hiredis's synchronous API (see redis_tier.hpp).
#include "cache_actor/redis_tier.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>
#include <sys/time.h>

#include <array>
#include <cstdio>
#include <memory>
#include <utility>

#include "cache_actor/entry_codec.hpp"

// Header-only XXH3: this library needs only the hash, not libxxhash.
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace troupe::cache {

namespace {

using clock = std::chrono::steady_clock;

struct reply_deleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = time_t(ms.count() / 1000);
  tv.tv_usec = suseconds_t((ms.count() % 1000) * 1000);
  return tv;
}

// Reads one reply of a pipeline; null when the connection failed (context->err says why).
reply_ptr next_reply(redisContext* c) {
  void* r = nullptr;
  if (redisGetReply(c, &r) != REDIS_OK) {
    if (r) freeReplyObject(r);
    return nullptr;
  }
  return reply_ptr(static_cast<redisReply*>(r));
}

std::string context_error(redisContext* c) {
  return c->err ? std::string(c->errstr) : std::string("no reply");
}

}  // namespace

std::string redis_key(const cluster::cache_key& key) {
  const XXH128_hash_t h = XXH3_128bits(key.bytes.data(), key.bytes.size());
  std::array<char, 33> hex{};
  std::snprintf(hex.data(), hex.size(), "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return "troupe:cache:v" + std::to_string(entry_format_version) + ":" + hex.data();
}

redis_tier::redis_tier(redis_options options)
    : options_(std::move(options)), where_(options_.host + ":" + std::to_string(options_.port)) {
  connect();
}

redis_tier::~redis_tier() {
  if (context_) redisFree(context_);
}

void redis_tier::connect() {
  const auto now = clock::now();
  next_attempt_ = now + options_.retry_interval;
  const timeval tv = to_timeval(options_.timeout);
  redisContext* c = redisConnectWithTimeout(options_.host.c_str(), options_.port, tv);
  if (c == nullptr || c->err || redisSetTimeout(c, tv) != REDIS_OK) {
    const std::string why = c ? context_error(c) : "cannot allocate a context";
    if (c) redisFree(c);
    ++errors_;
    if (!outage_logged_)
      spdlog::warn("response cache: Redis at {} unavailable ({}); serving from memory, retrying every {} ms",
                   where_, why, options_.retry_interval.count());
    outage_logged_ = true;
    return;
  }
  context_ = c;
  last_success_ = now;
  if (outage_logged_) spdlog::info("response cache: Redis at {} connected; using it again", where_);
  outage_logged_ = false;
}

void redis_tier::disconnect(const std::string& why) {
  redisFree(context_);
  context_ = nullptr;
  ++errors_;
  next_attempt_ = clock::now() + options_.retry_interval;
  if (!outage_logged_)
    spdlog::warn("response cache: Redis at {} failed ({}); serving from memory, retrying every {} ms", where_, why,
                 options_.retry_interval.count());
  outage_logged_ = true;
}

bool redis_tier::ensure_connected() {
  if (!context_ && clock::now() >= next_attempt_) connect();
  return context_ != nullptr;
}

bool redis_tier::warn_allowed() {
  const auto now = clock::now();
  if (now < next_value_warning_) return false;
  next_value_warning_ = now + value_warning_interval;
  return true;
}

std::optional<redis_tier::hit> redis_tier::get(const cluster::cache_key& key) {
  if (!ensure_connected()) return std::nullopt;
  const std::string rkey = redis_key(key);
  // GETRANGE 0 max returns at most max + 1 bytes: one more than allowed tells "too large" apart.
  const std::string last = std::to_string(options_.max_value_bytes);
  const char* get_argv[] = {"GETRANGE", rkey.data(), "0", last.data()};
  const size_t get_len[] = {8, rkey.size(), 1, last.size()};
  const char* ttl_argv[] = {"PTTL", rkey.data()};
  const size_t ttl_len[] = {4, rkey.size()};
  if (redisAppendCommandArgv(context_, 4, get_argv, get_len) != REDIS_OK ||
      redisAppendCommandArgv(context_, 2, ttl_argv, ttl_len) != REDIS_OK) {
    disconnect(context_error(context_));
    return std::nullopt;
  }
  reply_ptr value = next_reply(context_);
  reply_ptr ttl = value ? next_reply(context_) : nullptr;
  if (!value || !ttl) {
    disconnect(context_error(context_));
    return std::nullopt;
  }
  last_success_ = clock::now();
  if (value->type == REDIS_REPLY_ERROR) {
    ++errors_;
    if (warn_allowed()) spdlog::warn("response cache: Redis GETRANGE {}: {}", rkey, std::string(value->str, value->len));
    return std::nullopt;
  }
  if (value->type != REDIS_REPLY_STRING || value->len == 0) return std::nullopt;  // absent (or expired)
  if (int64_t(value->len) > options_.max_value_bytes) {
    ++errors_;
    if (warn_allowed())
      spdlog::warn("response cache: Redis value {} is over {} bytes: ignored", rkey, options_.max_value_bytes);
    return std::nullopt;
  }
  auto decoded = decode_entry(std::string_view(value->str, value->len));
  if (!decoded) {
    ++errors_;
    if (warn_allowed()) spdlog::warn("response cache: Redis value {}: {}; ignored", rkey, decoded.message());
    return std::nullopt;
  }
  if (decoded->key_bytes != key.bytes) {
    spdlog::debug("response cache: Redis key {} holds another cache key (hash collision): a miss", rkey);
    return std::nullopt;
  }
  hit h{std::move(decoded->entry), std::nullopt};
  if (ttl->type == REDIS_REPLY_INTEGER && ttl->integer != -1)
    h.ttl_left = std::chrono::milliseconds(ttl->integer < 0 ? 0 : ttl->integer);  // -2: expired meanwhile
  ++hits_;
  return h;
}

void redis_tier::set(const cluster::cache_key& key, const cluster::cache_entry& entry, std::chrono::seconds ttl) {
  if (!ensure_connected()) return;
  auto value = encode_entry(key.bytes, entry);
  if (!value) {
    if (warn_allowed()) spdlog::warn("response cache: not stored in Redis: {}", value.message());
    return;
  }
  if (int64_t(value->size()) > options_.max_value_bytes) return;  // it could not be read back
  const std::string rkey = redis_key(key);
  const std::string seconds = std::to_string(ttl.count());
  const char* argv[] = {"SET", rkey.data(), value->data(), "EX", seconds.data()};
  const size_t len[] = {3, rkey.size(), value->size(), 2, seconds.size()};
  void* r = redisCommandArgv(context_, ttl.count() > 0 ? 5 : 3, argv, len);
  if (r == nullptr) {
    disconnect(context_error(context_));
    return;
  }
  reply_ptr reply(static_cast<redisReply*>(r));
  last_success_ = clock::now();
  if (reply->type == REDIS_REPLY_ERROR) {
    ++errors_;
    if (warn_allowed()) spdlog::warn("response cache: Redis SET {}: {}", rkey, std::string(reply->str, reply->len));
  }
}

void redis_tier::maintain() {
  if (!context_) {
    ensure_connected();
    return;
  }
  if (clock::now() - last_success_ < options_.retry_interval) return;
  void* r = redisCommand(context_, "PING");
  if (r == nullptr) {
    disconnect(context_error(context_));
    return;
  }
  freeReplyObject(r);
  last_success_ = clock::now();
}

}  // namespace troupe::cache
