// The process's log: spdlog's default logger, writing to stderr with a timestamp and a level on
// every line, as text or as one JSON object per line (for log collectors). Every role logs through
// spdlog::info / warn / error; command output (a --json result, a CLI usage error) is not a log.
#pragma once

#include <string>

#include "common/expected.hpp"

namespace troupe {

struct log_options {
  std::string level = "info";   // trace, debug, info, warn, error, off
  std::string format = "text";  // text: "[2026-12-07T19:59:28.123Z] [info] message"; json: {"time","level","msg"}
};

// Installs the default logger. Errors name the flag and the accepted values; then nothing changes.
// Call once, from main, before any thread logs.
[[nodiscard]] expected<void> setup_logging(const log_options& o);

}  // namespace troupe
