// The process's log (see logging.hpp).
#include "common/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <ctime>

#include "common/json_escape.hpp"

namespace troupe {
namespace {

// One JSON object per line: {"time":"2026-12-07T19:59:28.123Z","level":"info","msg":"..."}. The
// message is escaped (common/json_escape.hpp), so any text a line carries stays valid JSON.
class json_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto since_epoch = msg.time.time_since_epoch();
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
    const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds).count();
    const std::time_t t = std::time_t(seconds.count());
    std::tm utc{};
    ::gmtime_r(&t, &utc);
    char stamp[40];
    std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                  utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, int(millis));
    std::string line = "{\"time\":\"";
    line += stamp;
    line += "\",\"level\":";
    const auto level = spdlog::level::to_string_view(msg.level);
    append_json_string(line, std::string_view(level.data(), level.size()));
    line += ",\"msg\":";
    append_json_string(line, std::string_view(msg.payload.data(), msg.payload.size()));
    line += "}\n";
    dest.append(line.data(), line.data() + line.size());
  }
  [[nodiscard]] std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_formatter>();
  }
};

}  // namespace

expected<void> setup_logging(const log_options& o) {
  spdlog::level::level_enum level = spdlog::level::info;
  if (o.level == "trace") level = spdlog::level::trace;
  else if (o.level == "debug") level = spdlog::level::debug;
  else if (o.level == "info") level = spdlog::level::info;
  else if (o.level == "warn") level = spdlog::level::warn;
  else if (o.level == "error") level = spdlog::level::err;
  else if (o.level == "off") level = spdlog::level::off;
  else return fail("--log-level: '" + o.level + "' is not one of trace, debug, info, warn, error, off");
  if (o.format != "text" && o.format != "json")
    return fail("--log-format: '" + o.format + "' is not one of text, json");

  // stderr: a command's output (generate's text, --json results) stays alone on stdout.
  std::shared_ptr<spdlog::logger> logger;
  if (o.format == "json") {
    logger = std::make_shared<spdlog::logger>("troupe", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger->set_formatter(std::make_unique<json_formatter>());
  } else {
    logger = std::make_shared<spdlog::logger>("troupe", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    logger->set_formatter(std::make_unique<spdlog::pattern_formatter>("[%Y-%m-%dT%H:%M:%S.%eZ] [%^%l%$] %v",
                                                                      spdlog::pattern_time_type::utc));
  }
  logger->set_level(level);
  logger->flush_on(spdlog::level::trace);  // every line at once: logs are read while a node runs
  spdlog::set_default_logger(std::move(logger));
  return {};
}

}  // namespace troupe
