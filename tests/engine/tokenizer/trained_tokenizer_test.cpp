// The trainer and a tokenizer trained on the default corpus: speed, determinism, round trips over
// many scripts, special tokens, add_bos, and the same ids from the JSON and the GGUF-metadata
// paths.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "engine/tokenizer/tokenizer.hpp"

namespace troupe::engine {
namespace {

namespace fs = std::filesystem;

// ctest runs each test in its own process, possibly in parallel: every process gets its own folder.
fs::path process_dir(const std::string& name) {
  return fs::path(TROUPE_TEST_TMP) / (name + "-" + std::to_string(::getpid()));
}

const std::vector<std::string> test_specials = {"<|begin_of_text|>", "<|end_of_text|>",
                                                "<|eot_id|>"};

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  ASSERT_TRUE(f.good()) << path;
}

// Texts that must survive encode -> decode unchanged.
const std::vector<std::string> round_trip_texts = {
    "Hello, world! The quick brown fox jumps over the lazy dog 1234567890 times.",
    "Crème brûlée, naïve façade, São Paulo, Zürich, Ångström, jalapeño, Łódź, Nguyễn.",
    "東京で日本語を話します。漢字と中文，한국어도 있어요.",
    "Emoji: 🚀🦀😀 👨‍👩‍👧 🇯🇵 ✨ and more🙂",
    "  leading, trailing and   inner   spaces \t\ttabs\n\n\nnewlines\r\n   ",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];  // dot\n}\nreturn sum >= 0 ? sum : "
    "-sum;",
    "",
    " ",
    "don't we'll they've I'M 'S",
};

class TrainedTokenizer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string((process_dir("trained")).string());
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    const auto start = std::chrono::steady_clock::now();
    auto json = train_bpe_tokenizer_json(default_training_corpus(), 32000, test_specials);
    train_seconds_ =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_TRUE(json) << json.message();
    json_ = new std::string(std::move(*json));
    write_file(fs::path(*dir_) / "tokenizer.json", *json_);
    auto tok = load_tokenizer_json(*dir_);
    ASSERT_TRUE(tok) << tok.message();
    tok_ = tok->release();
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (dir_) fs::remove_all(*dir_, ec);
    delete tok_;
    delete json_;
    delete dir_;
  }
  static inline std::string* dir_ = nullptr;
  static inline std::string* json_ = nullptr;
  static inline tokenizer* tok_ = nullptr;
  static inline double train_seconds_ = 0;
};

TEST_F(TrainedTokenizer, TrainsAFullVocabularyQuickly) {
  ASSERT_TRUE(tok_);
  EXPECT_GE(default_training_corpus().size(), 30'000u);
  EXPECT_LE(default_training_corpus().size(), 60'000u);
  EXPECT_LT(train_seconds_, 10.0);
  EXPECT_EQ(tok_->vocab_size(), 32000);
  // Layout: bytes first, then merges, then the given specials, then reserved fill to the end.
  EXPECT_EQ(tok_->token_bytes(static_cast<int32_t>('a')), "a");
  EXPECT_EQ(tok_->token_bytes(0x20), " ");
  const auto bot = tok_->token_id("<|begin_of_text|>");
  const auto eot = tok_->token_id("<|eot_id|>");
  ASSERT_TRUE(bot && eot);
  EXPECT_GT(*bot, 256 + 1000);  // many merges were learned from ~30 KB
  EXPECT_EQ(*eot, *bot + 2);
  EXPECT_EQ(tok_->token_id("<|reserved_special_token_0|>"), *bot + 3);
  EXPECT_TRUE(tok_->is_special(31999));
  EXPECT_TRUE(tok_->is_special(*bot));
  EXPECT_FALSE(tok_->is_special(*bot - 1));
  // Merges compress: the corpus takes far fewer tokens than bytes.
  const auto ids = tok_->encode(default_training_corpus(), false);
  EXPECT_LT(ids.size(), default_training_corpus().size() / 3);
  EXPECT_EQ(tok_->decode(ids), default_training_corpus());
}

TEST_F(TrainedTokenizer, RoundTripsEveryScript) {
  ASSERT_TRUE(tok_);
  for (const auto& text : round_trip_texts) {
    const auto ids = tok_->encode(text, false);
    EXPECT_EQ(tok_->decode(ids), text) << text;
    for (const int32_t id : ids) EXPECT_FALSE(tok_->is_special(id)) << text;
  }
  // Common words are single tokens; unseen scripts fall back to bytes but still round-trip.
  EXPECT_EQ(tok_->encode(" the", false).size(), 1u);
  EXPECT_GE(tok_->encode("🦀", false).size(), 2u);
}

TEST_F(TrainedTokenizer, InvalidUtf8SurvivesAsBytes) {
  ASSERT_TRUE(tok_);
  const std::string bad = "ok \xff\xfe bad \xc3( and cut \xe6\x97";
  EXPECT_EQ(tok_->decode(tok_->encode(bad, false)), bad);
}

TEST_F(TrainedTokenizer, SpecialTokensMatchedAndNotSplit) {
  ASSERT_TRUE(tok_);
  const int32_t eot = *tok_->token_id("<|eot_id|>");
  const int32_t bot = *tok_->token_id("<|begin_of_text|>");
  const std::string text = "<|begin_of_text|>Question?<|eot_id|> answer<|eot_id|><|eot_id|>";
  const auto ids = tok_->encode(text, false);
  EXPECT_EQ(ids.front(), bot);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), eot), 3);
  EXPECT_EQ(ids.back(), eot);
  EXPECT_EQ(tok_->decode(ids), text);
  EXPECT_EQ(tok_->decode(ids, true), "Question? answer");
  // A prefix of a special is ordinary text.
  const auto partial = tok_->encode("<|eot_id", false);
  EXPECT_EQ(std::count(partial.begin(), partial.end(), eot), 0);

  // parse_special=false: the same characters are plain text, never the special ids.
  const auto plain = tok_->encode(text, false, false);
  for (const int32_t id : plain) EXPECT_FALSE(tok_->is_special(id));
  EXPECT_GT(plain.size(), ids.size());
  EXPECT_EQ(tok_->decode(plain), text);
}

TEST_F(TrainedTokenizer, AddBosFromConfig) {
  ASSERT_TRUE(tok_);
  EXPECT_FALSE(tok_->specials().add_bos());
  EXPECT_EQ(tok_->encode("hi").size(), tok_->encode("hi", false).size());

  const fs::path dir = process_dir("trained_bos");
  fs::remove_all(dir);
  fs::create_directories(dir);
  write_file(dir / "tokenizer.json", *json_);
  write_file(
      dir / "tokenizer_config.json",
      R"({"add_bos_token": true, "bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"})");
  auto tok = load_tokenizer_json(dir.string());
  fs::remove_all(dir);
  ASSERT_TRUE(tok) << tok.message();
  const int32_t bot = *tok_->token_id("<|begin_of_text|>");
  const int32_t end = *tok_->token_id("<|end_of_text|>");
  const int32_t eot = *tok_->token_id("<|eot_id|>");
  EXPECT_TRUE((*tok)->specials().add_bos());
  EXPECT_EQ((*tok)->specials().bos, bot);
  EXPECT_EQ((*tok)->specials().eos, end);
  EXPECT_EQ((*tok)->specials().eos_ids, (std::vector<int32_t>{end, eot}));
  const auto with = (*tok)->encode("hello there");
  const auto without = (*tok)->encode("hello there", false);
  ASSERT_EQ(with.size(), without.size() + 1);
  EXPECT_EQ(with.front(), bot);
  EXPECT_TRUE(std::equal(without.begin(), without.end(), with.begin() + 1));
}

TEST_F(TrainedTokenizer, JsonAndGgufMetadataGiveTheSameIds) {
  ASSERT_TRUE(tok_);
  auto md = tokenizer_gguf_metadata(*dir_);
  ASSERT_TRUE(md) << md.message();
  EXPECT_EQ(std::get<std::string>(md->at("tokenizer.ggml.pre").v), "gpt2");
  EXPECT_EQ(md->count("tokenizer.chat_template"), 0u);
  gguf_file file;
  file.metadata = std::move(*md);
  auto gguf_tok = load_tokenizer_gguf(file);
  ASSERT_TRUE(gguf_tok) << gguf_tok.message();
  const tokenizer& g = **gguf_tok;
  EXPECT_EQ(g.vocab_size(), tok_->vocab_size());
  EXPECT_EQ(g.specials().eos_ids, tok_->specials().eos_ids);
  EXPECT_EQ(g.specials().add_bos(), tok_->specials().add_bos());
  std::vector<std::string> texts = round_trip_texts;
  texts.push_back("<|begin_of_text|>Q<|eot_id|>A<|reserved_special_token_77|>");
  texts.emplace_back(default_training_corpus());
  for (const auto& text : texts) {
    EXPECT_EQ(g.encode(text), tok_->encode(text)) << text.substr(0, 80);
    EXPECT_EQ(g.encode(text, true, false), tok_->encode(text, true, false)) << text.substr(0, 80);
  }
  for (int32_t id = 0; id < tok_->vocab_size(); id += 97) {
    EXPECT_EQ(g.token_bytes(id), tok_->token_bytes(id)) << id;
    EXPECT_EQ(g.is_special(id), tok_->is_special(id)) << id;
  }
}

TEST_F(TrainedTokenizer, ConcurrentEncodesAgree) {
  ASSERT_TRUE(tok_);
  const auto expected = tok_->encode(default_training_corpus(), false);
  std::vector<std::vector<int32_t>> results(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < results.size(); ++t) {
    threads.emplace_back(
        [t, &results]() { results[t] = tok_->encode(default_training_corpus(), false); });
  }
  for (auto& th : threads) th.join();
  for (const auto& r : results) EXPECT_EQ(r, expected);
}

TEST(BpeTrainer, DeterministicAndValidated) {
  const std::string corpus = "low lower lowest newer newest wider widest low low new new";
  auto a = train_bpe_tokenizer_json(corpus, 300, {"<s>"});
  auto b = train_bpe_tokenizer_json(corpus, 300, {"<s>"});
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
  EXPECT_NE(a->find("\"ignore_merges\": false"), std::string::npos);
  EXPECT_NE(a->find("\"<|reserved_special_token_0|>\""), std::string::npos);
  // "l"+"o" and "o"+"w" both occur 5 times (weighted by word frequency), more than any other
  // pair; the tie goes to the smaller ids, so "l"+"o" is the first merge.
  EXPECT_NE(a->find("\"merges\": [\n      [\"l\", \"o\"],\n      [\"lo\", \"w\"]"),
            std::string::npos)
      << a->substr(a->find("\"merges\""), 200);

  auto small = train_bpe_tokenizer_json(corpus, 257, {"<s>", "</s>"});
  ASSERT_FALSE(small);
  EXPECT_NE(small.message().find("vocab_size"), std::string::npos);
  auto dup = train_bpe_tokenizer_json(corpus, 300, {"<s>", "<s>"});
  ASSERT_FALSE(dup);

  // Exactly the bytes plus the specials: no merges at all, still a loadable tokenizer.
  auto bytes_only = train_bpe_tokenizer_json(corpus, 257, {"<s>"});
  ASSERT_TRUE(bytes_only) << bytes_only.message();
  const fs::path dir = process_dir("bytes_only");
  fs::remove_all(dir);
  fs::create_directories(dir);
  write_file(dir / "tokenizer.json", *bytes_only);
  auto tok = load_tokenizer_json(dir.string());
  fs::remove_all(dir);
  ASSERT_TRUE(tok) << tok.message();
  EXPECT_EQ((*tok)->vocab_size(), 257);
  EXPECT_EQ((*tok)->encode("low", false), (std::vector<int32_t>{'l', 'o', 'w'}));
}

}  // namespace
}  // namespace troupe::engine
