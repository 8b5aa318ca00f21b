// Logs refused messages (a stray chunk, a registration that may not replace a group, a request from
// outside the node) with who sent them, at most one line a second: the rest are counted and the
// count is logged with the next line, so that a flood cannot fill the disk through the log.
// Not thread-safe: one per actor.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace troupe {

class refusal_log {
 public:
  explicit refusal_log(std::string who) : who_(std::move(who)) {}

  // `what` was refused; `peer` says who sent it.
  void refused(const std::string& what, const std::string& peer) {
    const auto now = std::chrono::steady_clock::now();
    if (logged_once_ && now - logged_ < std::chrono::seconds(1)) {
      ++unlogged_;
      return;
    }
    if (unlogged_ > 0)
      spdlog::warn("{}: refused {} ({}); {} more refused since the last such line", who_, what, peer, unlogged_);
    else
      spdlog::warn("{}: refused {} ({})", who_, what, peer);
    logged_ = now;
    logged_once_ = true;
    unlogged_ = 0;
  }

 private:
  std::string who_;
  std::chrono::steady_clock::time_point logged_;
  bool logged_once_ = false;
  int64_t unlogged_ = 0;
};

}  // namespace troupe
