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

// A key file may hold the SHA-256 of a key instead of the key, and each key's label, weight and
// quota; the presented key finds its own entry.
TEST(api_keys, hashed_keys_labels_weights_and_quotas) {
  const std::string file = test::process_tmp() + "/keyed.txt";
  {
    std::ofstream f(file);
    // sha256("secret-of-bob")
    f << "alice-key label=alice weight=3 tpm=6000\n"
      << "sha256:" << [] {
           const auto h = hash_key("secret-of-bob");
           std::string hex;
           for (unsigned char c : h) {
             const char* d = "0123456789abcdef";
             hex += d[c >> 4];
             hex += d[c & 15];
           }
           return hex;
         }() << "\tlabel=bob\n"
      << "plain-key\n";
  }
  auto k = api_keys::load({"flag-key"}, file);
  ASSERT_TRUE(k) << k.message();
  ASSERT_EQ(k->entries().size(), 4u);
  const key_entry* alice = k->find("alice-key");
  ASSERT_NE(alice, nullptr);
  EXPECT_EQ(alice->label, "alice");
  EXPECT_DOUBLE_EQ(alice->weight, 3);
  EXPECT_EQ(alice->tokens_per_minute, 6000);
  const key_entry* bob = k->find("secret-of-bob");
  ASSERT_NE(bob, nullptr);
  EXPECT_EQ(bob->label, "bob");
  EXPECT_DOUBLE_EQ(bob->weight, 1);
  EXPECT_EQ(bob->tokens_per_minute, 0);
  EXPECT_EQ(k->find("sha256:" + std::string(64, '0')), nullptr) << "the hash itself is not a key";
  ASSERT_NE(k->find("flag-key"), nullptr);
  EXPECT_EQ(k->find("flag-key")->label, "key-1");
  ASSERT_NE(k->find("plain-key"), nullptr);
  EXPECT_EQ(k->find("plain-key")->label, "key-4");
}

TEST(api_keys, bad_fields_name_the_line_and_never_the_key) {
  const auto load_line = [](const std::string& line) {
    const std::string file = test::process_tmp() + "/field.txt";
    {
      std::ofstream f(file);
      f << "ok-key\n" << line << "\n";
    }
    return api_keys::load({}, file);
  };
  for (const auto& [line, says] : std::vector<std::pair<std::string, std::string>>{
           {"sk-123 weight=0", "weight"},
           {"sk-123 weight=abc", "weight"},
           {"sk-123 tpm=-5", "tpm"},
           {"sk-123 label=has/slash", "label"},
           {"sk-123 colour=blue", "unknown field 'colour'"},
           {"sk-123 loose", "NAME=VALUE"},
           {"sha256:abcd", "64 hex digits"},
           {"sk-123 label=key-1", "label 'key-1' a second time"}}) {
    auto k = load_line(line);
    ASSERT_FALSE(k) << line;
    EXPECT_NE(k.message().find("line 2"), std::string::npos) << k.message();
    EXPECT_NE(k.message().find(says), std::string::npos) << k.message();
    EXPECT_EQ(k.message().find("sk-123"), std::string::npos) << "the key must not be echoed: " << k.message();
  }
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
