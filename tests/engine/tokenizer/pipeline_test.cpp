// The pipeline pieces the oracle test does not reach through transformers.js (which treats every
// Split behaviour as Isolated and ignores Metaspace's split flag): Split behaviours as the Rust
// tokenizers document them, Metaspace word cutting, the normalizers, byte fallback and unknowns,
// streaming continuations, and the GGUF "llama" reader's checks.
#include <gtest/gtest.h>

#include <deque>
#include <filesystem>

#include "engine/tokenizer/incremental_decoder.hpp"
#include "engine/tokenizer/normalizer.hpp"
#include "engine/tokenizer/pre_tokenizer.hpp"
#include "engine/tokenizer/tokenizer.hpp"
#include "engine/tokenizer/tokenizer_spec.hpp"
#include "tests/test_oracle.hpp"
#include "tests/test_tmp.hpp"

namespace troupe::engine {
namespace {

using strs = std::vector<std::string>;
using ids = std::vector<int32_t>;

strs pre_split(const std::vector<pre_step>& steps, std::string_view text, bool at_start = true) {
  auto pre = pre_tokenizer::create(steps);
  EXPECT_TRUE(pre) << (pre ? "" : pre.message());
  std::vector<std::string_view> words;
  std::deque<std::string> storage;
  pre->split(text, at_start, words, storage);
  return strs(words.begin(), words.end());
}

pre_step split_on(std::string pattern, pre_step::behavior b, bool invert = false) {
  pre_step s = regex_split_step(std::move(pattern), "test");
  s.split_behavior = b;
  s.invert = invert;
  return s;
}

TEST(SplitBehavior, AsTheRustTokenizersDocumentIt) {
  using b = pre_step::behavior;
  const std::string text = "the-final--countdown";
  EXPECT_EQ(pre_split({split_on("-", b::removed)}, text), (strs{"the", "final", "countdown"}));
  EXPECT_EQ(pre_split({split_on("-", b::isolated)}, text),
            (strs{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(pre_split({split_on("-", b::merged_with_previous)}, text),
            (strs{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(pre_split({split_on("-", b::merged_with_next)}, text),
            (strs{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(pre_split({split_on("-", b::contiguous)}, text),
            (strs{"the", "-", "final", "--", "countdown"}));
  // Inverted: the pattern matches the pieces; Removed drops what lies between them.
  EXPECT_EQ(pre_split({split_on("[a-z]+", b::removed, true)}, text),
            (strs{"the", "final", "countdown"}));
}

TEST(Metaspace, PrependsAndCutsLikeSentencePiece) {
  pre_step m;
  m.what = pre_step::kind::metaspace;
  m.replacement = std::string(metaspace);
  // split true: cut before every "▁"; a run's last "▁" leads the next word.
  EXPECT_EQ(pre_split({m}, "Hey friend  x"), (strs{"▁Hey", "▁friend", "▁", "▁x"}));
  m.split_words = false;
  EXPECT_EQ(pre_split({m}, "Hey friend"), (strs{"▁Hey▁friend"}));
  EXPECT_EQ(pre_split({m}, " already"), (strs{"▁already"}));  // no second "▁"
  m.prepend_scheme = pre_step::prepend::first;
  EXPECT_EQ(pre_split({m}, "x y", true), (strs{"▁x▁y"}));
  EXPECT_EQ(pre_split({m}, "x y", false), (strs{"x▁y"}));  // not at the start of the input
  m.prepend_scheme = pre_step::prepend::never;
  EXPECT_EQ(pre_split({m}, "x y"), (strs{"x▁y"}));
  // An invalid byte is its own word and is never rewritten.
  m.prepend_scheme = pre_step::prepend::always;
  EXPECT_EQ(pre_split({m}, "a\xFF b"), (strs{"▁a", "\xFF", "▁b"}));
}

TEST(Normalizer, UnicodeFormsCaseAndStrip) {
  using k = normalizer_step::kind;
  const auto run = [](k what, std::string_view text) {
    normalizer_step s;
    s.what = what;
    s.left = s.right = true;
    return normalizer({s}).apply(text);
  };
  EXPECT_EQ(run(k::nfc, "e\xCC\x81"), "\xC3\xA9");        // e + U+0301 -> é
  EXPECT_EQ(run(k::nfd, "\xC3\xA9"), "e\xCC\x81");        // é -> e + U+0301
  EXPECT_EQ(run(k::nfkc, "\xEF\xAC\x81"), "fi");          // the ﬁ ligature
  EXPECT_EQ(run(k::nfkd, "\xE2\x91\xA0"), "1");           // circled digit one
  EXPECT_EQ(run(k::lowercase, "ÀÉÎ Straße ΣΑΣ"), "àéî straße σασ");
  EXPECT_EQ(run(k::strip, "\xE3\x80\x80 \tx y\n\xC2\xA0"), "x y");  // Unicode whitespace
  EXPECT_EQ(run(k::nfc, "a\xFF" "e\xCC\x81"), "a\xFF\xC3\xA9");    // invalid byte kept
  normalizer_step prepend;
  prepend.what = k::prepend;
  prepend.text = "▁";
  EXPECT_EQ(normalizer({prepend}).apply(""), "");  // nothing is prepended to nothing
}

// A SentencePiece-style tokenizer.json with a tiny vocabulary (no merges), for byte fallback,
// unknowns and decoding checks.
std::string tiny_sentencepiece_json(bool byte_fallback, bool with_bytes) {
  std::string vocab = R"("<unk>": 0, "<s>": 1, "</s>": 2, "▁": 3, "a": 4, "b": 5)";
  if (with_bytes) {
    for (int b = 0; b < 256; ++b) {
      char name[16];
      std::snprintf(name, sizeof name, ", \"<0x%02X>\": %d", b, 6 + b);
      vocab += name;
    }
  }
  return std::string(R"({"version": "1.0", "added_tokens": [
      {"id": 0, "content": "<unk>", "special": true, "normalized": false},
      {"id": 1, "content": "<s>", "special": true, "normalized": false},
      {"id": 2, "content": "</s>", "special": true, "normalized": false}],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
      {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
    "pre_tokenizer": null,
    "post_processor": {"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "</s>", "type_id": 0}}],
      "special_tokens": {"<s>": {"id": "<s>", "ids": [1]}, "</s>": {"id": "</s>", "ids": [2]}}},
    "decoder": {"type": "Sequence", "decoders": [
      {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
      {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
    "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": )") +
         (byte_fallback ? "true" : "false") + R"(, "vocab": {)" + vocab + R"(}, "merges": []}})";
}

std::unique_ptr<tokenizer> load_json(const std::string& name, const std::string& json,
                                     const std::string& config = "{}") {
  const std::string dir = test::process_tmp() + "/pipeline-" + name;
  std::filesystem::create_directories(dir);
  test::write_file(dir + "/tokenizer.json", json);
  test::write_file(dir + "/tokenizer_config.json", config);
  auto tok = load_tokenizer_json(dir);
  EXPECT_TRUE(tok) << tok.message();
  return tok ? std::move(*tok) : nullptr;
}

TEST(SentencePieceModel, ByteFallbackUnknownsAndTemplate) {
  auto bytes = load_json("bytes", tiny_sentencepiece_json(true, true));
  ASSERT_TRUE(bytes);
  // "é" is not in the vocabulary: its two UTF-8 bytes; the template adds <s> ... </s>.
  EXPECT_EQ(bytes->encode("ab é"), (ids{1, 3, 4, 5, 3, 6 + 0xC3, 6 + 0xA9, 2}));
  EXPECT_EQ(bytes->decode(bytes->encode("ab é"), true), "ab é");
  EXPECT_EQ(bytes->decode(bytes->encode("ab é")), "<s> ab é</s>");
  EXPECT_TRUE(bytes->strips_leading_space());

  // Without byte fallback, unknown characters become <unk>, consecutive ones fused into one.
  auto unk = load_json("unk", tiny_sentencepiece_json(false, false));
  ASSERT_TRUE(unk);
  EXPECT_EQ(unk->encode("a éé b", false), (ids{3, 4, 3, 0, 3, 5}));
  // Byte fallback with no byte tokens in the vocabulary also falls back to <unk>.
  auto no_bytes = load_json("no_bytes", tiny_sentencepiece_json(true, false));
  ASSERT_TRUE(no_bytes);
  EXPECT_EQ(no_bytes->encode("é", false), (ids{3, 0}));

  // add_eos_token false in the config drops the template's </s>; add_bos_token false its <s>.
  auto no_eos = load_json("no_eos", tiny_sentencepiece_json(true, true),
                          R"({"add_bos_token": false, "add_eos_token": false, "eos_token": "</s>",
                              "bos_token": "<s>"})");
  ASSERT_TRUE(no_eos);
  EXPECT_EQ(no_eos->encode("a"), (ids{3, 4}));
}

TEST(SentencePieceModel, StreamingKeepsTheContinuationSpace) {
  auto tok = load_json("stream", tiny_sentencepiece_json(true, true));
  ASSERT_TRUE(tok);
  const ids v = tok->encode("a b", false);  // ▁ a ▁ b
  // From the start of a text the leading space goes, as decode() drops it ...
  incremental_decoder start(*tok);
  std::string text;
  for (const int32_t id : v) text += start.push(id);
  EXPECT_EQ(text + start.flush(), "a b");
  // ... but tokens that continue a prompt keep theirs.
  incremental_decoder cont(*tok, false, false);
  text.clear();
  for (const int32_t id : v) text += cont.push(id);
  EXPECT_EQ(text + cont.flush(), " a b");
}

TEST(AddedTokens, SingleWordAndUnicodeStrip) {
  // A byte-level vocabulary of single letters and a single_word, lstrip, rstrip added token.
  std::string vocab;
  for (char c = 'a'; c <= 'z'; ++c) vocab += std::string(vocab.empty() ? "" : ", ") + "\"" + c + "\": " + std::to_string(c - 'a');
  vocab += R"(, "Ġ": 26, "Ċ": 27)";
  const std::string json = R"({"added_tokens": [{"id": 28, "content": "xy", "special": false,
      "normalized": false, "single_word": true, "lstrip": true, "rstrip": true}],
    "normalizer": null, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false},
    "post_processor": null, "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": {)" + vocab + R"(}, "merges": []}})";
  auto tok = load_json("single_word", json);
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("a xy b", false), (ids{0, 28, 1}));  // spaces swallowed both sides
  EXPECT_EQ(tok->encode("axy", false), (ids{0, 23, 24}));    // inside a word: not matched
  EXPECT_EQ(tok->encode("éxy", false).back(), 24);           // é is a letter: still inside a word
}

TEST(GgufSentencePiece, ChecksScores) {
  gguf_file file;
  auto& md = file.metadata;
  md["tokenizer.ggml.model"] = gguf_value{std::string("llama")};
  md["tokenizer.ggml.tokens"] = gguf_value{gguf_array{gguf_value{std::string("<unk>")},
                                                      gguf_value{std::string("▁")},
                                                      gguf_value{std::string("a")},
                                                      gguf_value{std::string("▁a")}}};
  md["tokenizer.ggml.scores"] = gguf_value{gguf_array{gguf_value{0.0f}, gguf_value{0.0f}}};
  auto short_scores = load_tokenizer_gguf(file);
  ASSERT_FALSE(short_scores);
  EXPECT_NE(short_scores.message().find("tokenizer.ggml.scores: 2 entries for 4 tokens"),
            std::string::npos)
      << short_scores.message();
  md["tokenizer.ggml.scores"] = gguf_value{gguf_array{gguf_value{0.0f}, gguf_value{0.0f},
                                                      gguf_value{std::string("x")}, gguf_value{-1.0f}}};
  auto bad_score = load_tokenizer_gguf(file);
  ASSERT_FALSE(bad_score);
  EXPECT_NE(bad_score.message().find("tokenizer.ggml.scores[2]"), std::string::npos);
  md["tokenizer.ggml.scores"] = gguf_value{gguf_array{gguf_value{0.0f}, gguf_value{0.0f},
                                                      gguf_value{0.0f}, gguf_value{-1.0f}}};
  md["tokenizer.ggml.unknown_token_id"] = gguf_value{uint32_t{0}};
  auto tok = load_tokenizer_gguf(file);
  ASSERT_TRUE(tok) << tok.message();
  // add_space_prefix (default): " a" -> "▁a" merged from its scores; unknown "b" -> <unk>.
  EXPECT_EQ((*tok)->encode("a b", false), (ids{3, 1, 0}));
  EXPECT_EQ((*tok)->decode((*tok)->encode("a a", false)), "a a");
}

}  // namespace
}  // namespace troupe::engine
