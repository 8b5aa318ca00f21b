// The process's log (common/logging.hpp): each line carries a timestamp and a level; the JSON
// format is one valid JSON object per line whatever the message holds; bad flag values are errors
// naming the flag, and the level filters.
#include <gtest/gtest.h>
#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include "common/logging.hpp"

namespace troupe {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(logging, json_lines_are_valid_json_with_time_level_and_the_message) {
  ASSERT_TRUE(setup_logging({"info", "json"}));
  testing::internal::CaptureStderr();
  spdlog::info("group {} serving \"tiny\"\n\ttab and \x01 control", "g1");
  spdlog::warn("second line");
  spdlog::debug("filtered out at info");
  const auto lines = lines_of(testing::internal::GetCapturedStderr());
  ASSERT_EQ(lines.size(), 2u);
  simdjson::dom::parser parser;
  simdjson::dom::element first;
  ASSERT_FALSE(parser.parse(lines[0]).get(first)) << lines[0];
  std::string_view time, level, msg;
  ASSERT_FALSE(first["time"].get(time));
  ASSERT_FALSE(first["level"].get(level));
  ASSERT_FALSE(first["msg"].get(msg));
  EXPECT_EQ(level, "info");
  EXPECT_EQ(msg, "group g1 serving \"tiny\"\n\ttab and \x01 control");
  EXPECT_EQ(time.size(), 24u) << time;  // 2026-12-07T19:59:28.123Z
  EXPECT_EQ(time.back(), 'Z');
  simdjson::dom::element second;
  ASSERT_FALSE(parser.parse(lines[1]).get(second)) << lines[1];
  EXPECT_EQ(std::string_view(second["level"]), "warning");
}

TEST(logging, text_lines_have_a_timestamp_and_the_level) {
  ASSERT_TRUE(setup_logging({"debug", "text"}));
  testing::internal::CaptureStderr();
  spdlog::debug("visible at debug");
  const auto lines = lines_of(testing::internal::GetCapturedStderr());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].rfind("[20", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find("Z] [debug] visible at debug"), std::string::npos) << lines[0];
}

TEST(logging, bad_values_name_the_flag_and_change_nothing) {
  ASSERT_TRUE(setup_logging({"error", "text"}));
  auto level = setup_logging({"loud", "text"});
  ASSERT_FALSE(level);
  EXPECT_NE(level.message().find("--log-level: 'loud'"), std::string::npos) << level.message();
  auto format = setup_logging({"info", "xml"});
  ASSERT_FALSE(format);
  EXPECT_NE(format.message().find("--log-format: 'xml'"), std::string::npos) << format.message();
  testing::internal::CaptureStderr();
  spdlog::warn("still filtered at error");
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

}  // namespace
}  // namespace troupe
