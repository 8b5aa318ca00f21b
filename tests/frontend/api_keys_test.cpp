// API keys: loading from flags and files, constant-time checks, the Bearer header.
#include "frontend/core/api_keys.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/test_tmp.hpp"

namespace troupe::frontend {
namespace {

TEST(api_keys, none_means_open) {
  auto k = api_keys::load({}, "");
  ASSERT_TRUE(k) << k.message();
  EXPECT_FALSE(k->enabled());
}

TEST(api_keys, flags_and_file_are_both_accepted_exactly) {
  const std::string file = test::process_tmp() + "/keys.txt";
  {
    std::ofstream f(file);
    f << "# operators\n\nkey-from-file\n  padded-key  \r\n";
  }
  auto k = api_keys::load({"flag-key"}, file);
  ASSERT_TRUE(k) << k.message();
  EXPECT_TRUE(k->enabled());
  EXPECT_TRUE(k->check("flag-key"));
  EXPECT_TRUE(k->check("key-from-file"));
  EXPECT_TRUE(k->check("padded-key"));
  EXPECT_FALSE(k->check("flag-ke"));
  EXPECT_FALSE(k->check("flag-key2"));
  EXPECT_FALSE(k->check(""));
  EXPECT_FALSE(k->check("# operators"));
}

TEST(api_keys, bad_keys_and_files_are_refused_without_echoing_the_key) {
  auto empty = api_keys::load({""}, "");
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.message().find("empty key"), std::string::npos);
  auto spaced = api_keys::load({"two words"}, "");
  ASSERT_FALSE(spaced);
  EXPECT_EQ(spaced.message().find("two words"), std::string::npos) << "the key must not be echoed";
  auto missing = api_keys::load({}, "/nonexistent/keys");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.message().find("/nonexistent/keys"), std::string::npos);
  const std::string file = test::process_tmp() + "/bad-keys.txt";
  {
    std::ofstream f(file);
    f << "good\nbad\tkey\n";
  }
  auto bad = api_keys::load({}, file);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.message().find("line 2"), std::string::npos) << bad.message();
}

TEST(api_keys, bearer_header) {
  EXPECT_EQ(api_keys::bearer("Bearer abc"), "abc");
  EXPECT_EQ(api_keys::bearer("bearer  abc "), "abc");
  EXPECT_EQ(api_keys::bearer("Basic abc"), "");
  EXPECT_EQ(api_keys::bearer("Bearer"), "");
  EXPECT_EQ(api_keys::bearer(""), "");
}

}  // namespace
}  // namespace troupe::frontend
