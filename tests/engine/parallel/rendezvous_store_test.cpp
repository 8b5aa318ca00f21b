// The rendezvous stores on their own: set/get/wait, timeouts that name the missing key, and keys
// that cannot escape the file store's directory.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "engine/parallel/rendezvous_store.hpp"
#include "tests/test_tmp.hpp"

namespace troupe::engine::parallel {
namespace {

using namespace std::chrono_literals;

std::vector<std::byte> bytes(std::string_view s) {
  std::vector<std::byte> out(s.size());
  for (size_t i = 0; i < s.size(); ++i) out[i] = std::byte(s[i]);
  return out;
}

class stores : public ::testing::TestWithParam<const char*> {
 protected:
  std::shared_ptr<rendezvous_store> make() {
    if (std::string(GetParam()) == "memory") return make_memory_store();
    auto s = make_file_store(troupe::test::process_tmp() + "/store-" +
                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    EXPECT_TRUE(s) << s.message();
    return *s;
  }
};

TEST_P(stores, set_then_get_and_wait) {
  auto s = make();
  ASSERT_TRUE(s->set("group/0", bytes("addr-0")));
  auto v = s->get("group/0");
  ASSERT_TRUE(v) << v.message();
  EXPECT_EQ(*v, bytes("addr-0"));
  EXPECT_TRUE(s->wait({"group/0"}, 10ms));
  ASSERT_TRUE(s->set("group/0", bytes("")));  // replaced, and empty values are values
  EXPECT_TRUE(s->get("group/0")->empty());
}

TEST_P(stores, wait_sees_a_key_set_later_by_another_thread) {
  auto s = make();
  std::thread setter([s] {
    std::this_thread::sleep_for(50ms);
    (void)s->set("late", bytes("x"));
  });
  EXPECT_TRUE(s->wait({"late"}, 5s));
  setter.join();
}

TEST_P(stores, a_missing_key_is_an_error_naming_it) {
  auto s = make();
  auto v = s->get("nobody");
  ASSERT_FALSE(v);
  EXPECT_NE(v.message().find("'nobody'"), std::string::npos) << v.message();
  const auto start = std::chrono::steady_clock::now();
  auto w = s->wait({"nobody"}, 100ms);
  ASSERT_FALSE(w);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 100ms);
  EXPECT_NE(w.message().find("'nobody' not set within 100 ms"), std::string::npos) << w.message();
}

TEST_P(stores, keys_with_separators_and_dots_are_distinct) {
  auto s = make();
  ASSERT_TRUE(s->set("../x", bytes("a")));
  ASSERT_TRUE(s->set("x", bytes("b")));
  ASSERT_TRUE(s->set("a/b", bytes("c")));
  ASSERT_TRUE(s->set("a%2fb", bytes("d")));
  EXPECT_EQ(*s->get("../x"), bytes("a"));
  EXPECT_EQ(*s->get("x"), bytes("b"));
  EXPECT_EQ(*s->get("a/b"), bytes("c"));
  EXPECT_EQ(*s->get("a%2fb"), bytes("d"));
}

INSTANTIATE_TEST_SUITE_P(kinds, stores, ::testing::Values("memory", "file"));

TEST(file_store, files_stay_inside_the_directory) {
  const std::string dir = troupe::test::process_tmp() + "/contained";
  auto s = make_file_store(dir);
  ASSERT_TRUE(s) << s.message();
  ASSERT_TRUE((*s)->set("../escape", bytes("a")));
  EXPECT_FALSE(std::filesystem::exists(troupe::test::process_tmp() + "/escape"));
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    EXPECT_EQ(e.path().filename().string().rfind(".tmp.", 0), std::string::npos);  // no temporary left
    ++files;
  }
  EXPECT_EQ(files, 1u);
}

TEST(file_store, an_unusable_directory_is_an_error) {
  auto s = make_file_store("/proc/self/no/such/dir");
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("/proc/self/no/such/dir"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace troupe::engine::parallel
