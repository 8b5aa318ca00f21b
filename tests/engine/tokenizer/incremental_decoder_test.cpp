// Streaming detokenization over characters that byte-level tokens split: every delta is valid
// UTF-8, and the deltas add up to decode(ids).
#include "engine/tokenizer/incremental_decoder.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "engine/tokenizer/tokenizer.hpp"
#include "engine/tokenizer/utf8.hpp"

namespace troupe::engine {
namespace {

namespace fs = std::filesystem;

std::unique_ptr<tokenizer> small_trained() {
  // A small vocabulary, so that characters outside the corpus stay split into byte tokens.
  auto json = train_bpe_tokenizer_json(default_training_corpus(), 1000, {"<|eot_id|>"});
  EXPECT_TRUE(json) << (json ? "" : json.message());
  // Per process: ctest may run these tests in parallel processes.
  const fs::path dir = fs::path(TROUPE_TEST_TMP) / ("incremental-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "tokenizer.json", std::ios::binary) << *json;
  auto tok = load_tokenizer_json(dir.string());
  EXPECT_TRUE(tok) << (tok ? "" : tok.message());
  fs::remove_all(dir);
  return tok ? std::move(*tok) : nullptr;
}

TEST(IncrementalDecoder, NeverSplitsACharacter) {
  const auto tok = small_trained();
  ASSERT_TRUE(tok);
  const std::string text = "漢字 and 東京 🦀🚀 naïve 😀<|eot_id|> done ✨";
  const auto ids = tok->encode(text, false);
  // The test means something only if some token holds part of a character.
  bool some_partial = false;
  for (const int32_t id : ids) some_partial |= !utf8_is_valid(tok->token_bytes(id));
  ASSERT_TRUE(some_partial);

  incremental_decoder dec(*tok);
  std::string streamed;
  size_t held_back = 0;
  for (const int32_t id : ids) {
    const std::string delta = dec.push(id);
    EXPECT_TRUE(utf8_is_valid(delta)) << id;
    held_back += dec.pending() > 0 ? 1 : 0;
    streamed += delta;
  }
  EXPECT_GT(held_back, 0u);
  streamed += dec.flush();
  EXPECT_EQ(streamed, tok->decode(ids));
  EXPECT_EQ(streamed, text);
}

TEST(IncrementalDecoder, SkipsSpecialsWhenAsked) {
  const auto tok = small_trained();
  ASSERT_TRUE(tok);
  const auto ids = tok->encode("a<|eot_id|>b", false);
  incremental_decoder dec(*tok, true);
  std::string out;
  for (const int32_t id : ids) out += dec.push(id);
  out += dec.flush();
  EXPECT_EQ(out, "ab");
  EXPECT_EQ(out, tok->decode(ids, true));
}

TEST(IncrementalDecoder, FlushReplacesAnUnfinishedCharacter) {
  const auto tok = small_trained();
  ASSERT_TRUE(tok);
  const auto ids = tok->encode("x🦀", false);
  ASSERT_GE(ids.size(), 2u);
  incremental_decoder dec(*tok);
  std::string out;
  for (size_t i = 0; i + 1 < ids.size(); ++i) out += dec.push(ids[i]);
  EXPECT_EQ(out, "x");
  EXPECT_GT(dec.pending(), 0u);
  EXPECT_EQ(dec.flush(), std::string(utf8_replacement));
  EXPECT_EQ(dec.pending(), 0u);
  EXPECT_EQ(dec.flush(), "");
}

TEST(IncrementalDecoder, InvalidBytesBecomeReplacementCharacters) {
  const auto tok = small_trained();
  ASSERT_TRUE(tok);
  // Byte tokens 0xFF and 0xC3 0x28: never valid UTF-8.
  incremental_decoder dec(*tok);
  std::string out = dec.push('a');
  out += dec.push(0xFF);
  out += dec.push(0xC3);
  EXPECT_EQ(dec.pending(), 1u);  // could still become "é"
  out += dec.push('(');
  out += dec.flush();
  EXPECT_EQ(out, "a\xEF\xBF\xBD\xEF\xBF\xBD(");
}

TEST(Utf8, ChecksSequences) {
  EXPECT_TRUE(utf8_is_valid("aé東🦀"));
  EXPECT_FALSE(utf8_is_valid("\xC0\xAF"));          // overlong
  EXPECT_FALSE(utf8_is_valid("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(utf8_is_valid("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_EQ(utf8_check("\xF0\x9F", 0).status, utf8_status::incomplete);
  EXPECT_EQ(utf8_check("\xF0\x9F(", 0).status, utf8_status::invalid);
  EXPECT_EQ(utf8_check("\xF0\x9F(", 0).length, 2u);
}

}  // namespace
}  // namespace troupe::engine
