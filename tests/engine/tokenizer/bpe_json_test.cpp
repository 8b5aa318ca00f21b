// Hand-written tokenizer.json files with merges small enough to work out on paper, the loader's
// error messages, and the pre-tokenizer regexes on their own.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/tokenizer/regex_split.hpp"
#include "engine/tokenizer/tokenizer.hpp"

namespace troupe::engine {
namespace {

namespace fs = std::filesystem;

fs::path process_root() {
  return fs::path(TROUPE_TEST_TMP) / ("bpe_json-" + std::to_string(::getpid()));
}

// Removes this process's folder when the tests end.
class remove_process_root : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(process_root(), ec);
  }
};
[[maybe_unused]] const auto* const cleanup =
    ::testing::AddGlobalTestEnvironment(new remove_process_root);

std::string make_dir(const std::string& name) {
  // Per process: ctest may run these tests in parallel processes.
  const fs::path dir = process_root() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  ASSERT_TRUE(f.good()) << path;
}

// Vocabulary: single characters h e l o p w r d and "Ġ" (the byte-level space, written as a JSON
// escape), merges h+e, l+l, he+ll, hell+o, Ġ+w; "Ġwor" is a token no merge reaches.
const char* const small_model = R"({
    "type": "BPE", "dropout": null, "unk_token": null, "ignore_merges": IGNORE,
    "vocab": {"h": 0, "e": 1, "l": 2, "o": 3, "p": 4, "w": 5, "r": 6, "d": 7, "\u0120": 8,
              "he": 9, "ll": 10, "hell": 11, "hello": 12, "\u0120w": 13, "\u0120wor": 17},
    "merges": MERGES
  })";

std::string small_tokenizer_json(
    const std::string& pre_tokenizer, bool ignore_merges = false,
    const std::string& merges = R"(["h e", "l l", "he ll", "hell o", "Ġ w"])") {
  std::string model = small_model;
  model.replace(model.find("IGNORE"), 6, ignore_merges ? "true" : "false");
  model.replace(model.find("MERGES"), 6, merges);
  return R"({"version": "1.0",
  "added_tokens": [
    {"id": 14, "content": "<|eot_id|>", "special": true, "lstrip": false, "rstrip": false, "normalized": false, "single_word": false},
    {"id": 15, "content": "<|begin_of_text|>", "special": true},
    {"id": 18, "content": "<mask>", "special": false, "lstrip": true}
  ],
  "normalizer": null,
  "pre_tokenizer": )" +
         pre_tokenizer + R"(,
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
    "pair": [],
    "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [15], "tokens": ["<|begin_of_text|>"]}}},
  "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
  "model": )" +
         model + "}";
}

const std::string byte_level_pre =
    R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": true})";

std::unique_ptr<tokenizer> load_small(const std::string& name, const std::string& json,
                                      const std::string& config = "") {
  const std::string dir = make_dir(name);
  write_file(dir + "/tokenizer.json", json);
  if (!config.empty()) write_file(dir + "/tokenizer_config.json", config);
  auto tok = load_tokenizer_json(dir);
  EXPECT_TRUE(tok.has_value()) << (tok ? "" : tok.message());
  return tok ? std::move(*tok) : nullptr;
}

using ids = std::vector<int32_t>;

TEST(BpeJson, HandComputedMerges) {
  const auto tok = load_small("hand", small_tokenizer_json(byte_level_pre));
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->vocab_size(), 19);
  EXPECT_EQ(tok->encode("hello", false), (ids{12}));
  EXPECT_EQ(tok->encode("hell", false), (ids{11}));
  EXPECT_EQ(tok->encode("help", false), (ids{9, 2, 4}));  // he l p: no "he l" merge
  EXPECT_EQ(tok->encode("lll", false), (ids{10, 2}));     // equal ranks: leftmost first
  EXPECT_EQ(tok->encode("hello world", false), (ids{12, 13, 3, 6, 2, 7}));
  EXPECT_EQ(tok->decode({12, 13, 3, 6, 2, 7}), "hello world");
  EXPECT_EQ(tok->token_bytes(8), " ");
  EXPECT_EQ(tok->token_bytes(13), " w");
  EXPECT_EQ(tok->token_bytes(99), "");
  EXPECT_EQ(tok->token_id("hello"), 12);
  EXPECT_EQ(tok->token_id("<|eot_id|>"), 14);
  EXPECT_FALSE(tok->token_id("nope").has_value());
}

TEST(BpeJson, TemplateBosAndConfigEos) {
  const auto tok = load_small("template", small_tokenizer_json(byte_level_pre),
                              R"({"eos_token": {"content": "<|eot_id|>", "special": true}})");
  ASSERT_TRUE(tok);
  EXPECT_TRUE(tok->specials().add_bos());
  EXPECT_EQ(tok->specials().bos, 15);
  EXPECT_EQ(tok->specials().eos, 14);
  EXPECT_EQ(tok->specials().eos_ids, (ids{14}));
  EXPECT_EQ(tok->encode("hello"), (ids{15, 12}));
  EXPECT_EQ(tok->encode("hello", false), (ids{12}));
  EXPECT_TRUE(tok->is_special(14));
  EXPECT_TRUE(tok->is_special(15));
  EXPECT_FALSE(tok->is_special(18));
  EXPECT_FALSE(tok->is_special(12));

  // An explicit add_bos_token in the config wins over the template.
  const auto no_bos = load_small("template_off", small_tokenizer_json(byte_level_pre),
                                 R"({"add_bos_token": false, "bos_token": "<|begin_of_text|>"})");
  ASSERT_TRUE(no_bos);
  EXPECT_FALSE(no_bos->specials().add_bos());
  EXPECT_EQ(no_bos->encode("hello"), (ids{12}));
}

TEST(BpeJson, AddedTokensMatchedLiterally) {
  const auto tok = load_small("added", small_tokenizer_json(byte_level_pre));
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("hello<|eot_id|>hello", false), (ids{12, 14, 12}));
  // Not split by the pre-tokenizer, and the space before a special stays text.
  EXPECT_EQ(tok->encode("hello <|eot_id|>", false), (ids{12, 8, 14}));
  // lstrip: "<mask>" swallows the space on its left.
  EXPECT_EQ(tok->encode("hello <mask>", false), (ids{12, 18}));
  // parse_special=false: the special is text (its characters are not in this tiny vocabulary,
  // so only "h"+"e"... remain), while the non-special <mask> is still matched.
  const ids plain = tok->encode("<|eot_id|>hello<mask>", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 14), 0);
  EXPECT_EQ(plain.back(), 18);
  EXPECT_EQ(tok->decode({12, 14, 12}), "hello<|eot_id|>hello");
  EXPECT_EQ(tok->decode({12, 14, 12}, true), "hellohello");
}

TEST(BpeJson, IgnoreMerges) {
  const auto merged = load_small("merges_on", small_tokenizer_json(byte_level_pre, false));
  const auto whole = load_small("merges_off", small_tokenizer_json(byte_level_pre, true));
  ASSERT_TRUE(merged && whole);
  EXPECT_EQ(merged->encode(" wor", false), (ids{13, 3, 6}));
  EXPECT_EQ(whole->encode(" wor", false), (ids{17}));  // the word is a token: taken whole
  EXPECT_EQ(whole->encode("hello", false), (ids{12}));
}

TEST(BpeJson, AddPrefixSpacePerSegment) {
  const std::string pre = R"({"type": "ByteLevel", "add_prefix_space": true, "use_regex": true})";
  const std::string dir = make_dir("prefix_space");
  write_file(dir + "/tokenizer.json", small_tokenizer_json(pre));
  auto tok = load_tokenizer_json(dir);
  ASSERT_TRUE(tok) << tok.message();
  // Every stretch between added tokens gets the space, as Hugging Face's ByteLevel does.
  EXPECT_EQ((*tok)->encode("hello", false), (ids{8, 12}));
  EXPECT_EQ((*tok)->encode("hello<|eot_id|>world", false), (ids{8, 12, 14, 13, 3, 6, 2, 7}));
  // GGUF has no way to say this: converting is an error, not a different tokenizer.
  auto md = tokenizer_gguf_metadata(dir);
  ASSERT_FALSE(md);
  EXPECT_NE(md.message().find("add_prefix_space"), std::string::npos) << md.message();
}

TEST(BpeJson, MergesAsPairs) {
  const auto tok = load_small(
      "pairs",
      small_tokenizer_json(byte_level_pre, false,
                           R"([["h", "e"], ["l", "l"], ["he", "ll"], ["hell", "o"], ["Ġ", "w"]])"));
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("hello world", false), (ids{12, 13, 3, 6, 2, 7}));
}

TEST(BpeJson, SplitThenByteLevelSequence) {
  const std::string pre = R"({"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]})";
  const std::string dir = make_dir("llama3_split");
  // GGUF cannot express lstrip (llama.cpp matches added tokens exactly): this folder has none.
  std::string json = small_tokenizer_json(pre, true);
  json.replace(json.find("\"lstrip\": true"), 14, "\"lstrip\": false");
  write_file(dir + "/tokenizer.json", json);
  write_file(
      dir + "/tokenizer_config.json",
      R"({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "chat_template": "{{ messages }}"})");
  auto tok = load_tokenizer_json(dir);
  ASSERT_TRUE(tok) << tok.message();
  EXPECT_EQ((*tok)->encode("hello hello", false), (ids{12, 8, 12}));

  // The same folder as GGUF metadata: Llama 3's regex is named "llama-bpe".
  auto md = tokenizer_gguf_metadata(dir);
  ASSERT_TRUE(md) << md.message();
  EXPECT_EQ(std::get<std::string>(md->at("tokenizer.ggml.pre").v), "llama-bpe");
  EXPECT_EQ(std::get<std::string>(md->at("tokenizer.ggml.model").v), "gpt2");
  EXPECT_EQ(std::get<std::string>(md->at("tokenizer.chat_template").v), "{{ messages }}");
  EXPECT_EQ(std::get<uint32_t>(md->at("tokenizer.ggml.bos_token_id").v), 15u);
  EXPECT_EQ(std::get<uint32_t>(md->at("tokenizer.ggml.eos_token_id").v), 14u);
  EXPECT_TRUE(std::get<bool>(md->at("tokenizer.ggml.add_bos_token").v));
  const auto& tokens = std::get<gguf_array>(md->at("tokenizer.ggml.tokens").v);
  const auto& types = std::get<gguf_array>(md->at("tokenizer.ggml.token_type").v);
  const auto& merges = std::get<gguf_array>(md->at("tokenizer.ggml.merges").v);
  ASSERT_EQ(tokens.size(), 19u);
  ASSERT_EQ(types.size(), 19u);
  EXPECT_EQ(std::get<std::string>(tokens[12].v), "hello");
  EXPECT_EQ(std::get<std::string>(tokens[14].v), "<|eot_id|>");
  EXPECT_EQ(std::get<std::string>(tokens[16].v), "[PAD16]");  // a hole in the ids
  EXPECT_EQ(std::get<int32_t>(types[12].v), 1);
  EXPECT_EQ(std::get<int32_t>(types[14].v), 3);
  EXPECT_EQ(std::get<int32_t>(types[16].v), 5);
  EXPECT_EQ(std::get<int32_t>(types[18].v), 4);
  ASSERT_EQ(merges.size(), 5u);
  EXPECT_EQ(std::get<std::string>(merges[4].v), "Ġ w");

  gguf_file file;
  file.metadata = std::move(*md);
  auto from_gguf = load_tokenizer_gguf(file);
  ASSERT_TRUE(from_gguf) << from_gguf.message();
  for (const std::string text :
       {"hello hello", " wor", "hello<|eot_id|> world<mask>", "lll help"}) {
    EXPECT_EQ((*from_gguf)->encode(text), (*tok)->encode(text)) << text;
  }
  EXPECT_EQ((*from_gguf)->specials().eos_ids, (*tok)->specials().eos_ids);
}

TEST(PreTokenizerRegex, FamiliesSplitAsPublished) {
  const auto pieces = [](std::string_view pattern, std::string_view text) {
    auto re = regex_splitter::create(std::string(pattern));
    EXPECT_TRUE(re) << (re ? "" : re.message());
    std::vector<std::string_view> out;
    (*re)->split(text, out);
    return std::vector<std::string>(out.begin(), out.end());
  };
  using strs = std::vector<std::string>;
  EXPECT_EQ(pieces(gpt2_split_pattern, "I'll pay 1234567 now!!  ok"),
            (strs{"I", "'ll", " pay", " 1234567", " now", "!!", " ", " ok"}));
  EXPECT_EQ(pieces(llama3_split_pattern, "I'LL pay 1234567\n\n  x"),
            (strs{"I", "'LL", " pay", " ", "123", "456", "7", "\n\n", " ", " x"}));
  EXPECT_EQ(pieces(qwen2_split_pattern, "n=42"), (strs{"n", "=", "4", "2"}));
  EXPECT_EQ(pieces(gpt2_split_pattern, "café 東京"), (strs{"café", " 東京"}));
}

void expect_error(const std::string& name, const std::string& json,
                  std::initializer_list<std::string> parts) {
  const std::string dir = make_dir(name);
  write_file(dir + "/tokenizer.json", json);
  auto tok = load_tokenizer_json(dir);
  ASSERT_FALSE(tok.has_value()) << name;
  // "<dir>/tokenizer.json: <key>: ...", the file named once, first.
  const std::string file = dir + "/tokenizer.json: ";
  EXPECT_EQ(tok.message().rfind(file, 0), 0u) << tok.message();
  EXPECT_EQ(tok.message().find(file, 1), std::string::npos) << tok.message();
  for (const auto& p : parts) EXPECT_NE(tok.message().find(p), std::string::npos) << tok.message();
}

TEST(BpeJsonErrors, NameTheFileAndKey) {
  std::string unigram = small_tokenizer_json(byte_level_pre);
  unigram.replace(unigram.find("\"BPE\""), 5, "\"Unigram\"");
  expect_error("unigram", unigram, {"model.type", "Unigram"});

  std::string wordpiece = small_tokenizer_json(byte_level_pre);
  wordpiece.replace(wordpiece.find("\"BPE\""), 5, "\"WordPiece\"");
  expect_error("wordpiece", wordpiece, {"model.type", "WordPiece"});

  expect_error("unknown_merge", small_tokenizer_json(byte_level_pre, false, R"(["h e", "h x"])"),
               {"model.merges[1]", "\"x\""});
  expect_error("merge_result", small_tokenizer_json(byte_level_pre, false, R"(["e h"])"),
               {"model.merges[0]", "eh"});
  expect_error("bad_merge_string", small_tokenizer_json(byte_level_pre, false, R"(["he"])"),
               {"model.merges[0]"});

  std::string no_vocab = small_tokenizer_json(byte_level_pre);
  no_vocab.replace(no_vocab.find("\"vocab\""), 7, "\"vocabulary\"");
  expect_error("no_vocab", no_vocab, {"model.vocab", "missing"});

  expect_error("malformed", small_tokenizer_json(byte_level_pre).substr(0, 200),
               {"malformed JSON"});
  expect_error("not_object", "[1, 2, 3]", {"expected an object"});

  const std::string bad_regex_pre = R"({"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "(\\p{L}+"}, "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]})";
  expect_error("bad_regex", small_tokenizer_json(bad_regex_pre),
               {"pre_tokenizer.pretokenizers[0].pattern.Regex", "regex"});

  expect_error("bert_pre", small_tokenizer_json(R"({"type": "BertPreTokenizer"})"),
               {"pre_tokenizer.type", "BertPreTokenizer"});
  // A SentencePiece pre-tokenizer with a byte-level decoder would decode to the wrong text.
  expect_error("metaspace", small_tokenizer_json(R"({"type": "Metaspace", "replacement": "▁"})"),
               {"decoder.type", "ByteLevel"});
  std::string bad_id = small_tokenizer_json(byte_level_pre);
  bad_id.replace(bad_id.find("\"d\": 7"), 6, "\"d\": \"7\"");
  expect_error("bad_id", bad_id, {"model.vocab[\"d\"]", "integer"});

  const std::string missing = make_dir("missing");
  auto none = load_tokenizer_json(missing);
  ASSERT_FALSE(none);
  EXPECT_NE(none.message().find("tokenizer.json: no such file"), std::string::npos)
      << none.message();
}

TEST(BpeJsonErrors, ConfigNamesItsKey) {
  const std::string dir = make_dir("bad_config");
  write_file(dir + "/tokenizer.json", small_tokenizer_json(byte_level_pre));
  write_file(dir + "/tokenizer_config.json", R"({"eos_token": "<|not_here|>"})");
  auto tok = load_tokenizer_json(dir);
  ASSERT_FALSE(tok);
  EXPECT_NE(tok.message().find("tokenizer_config.json: eos_token"), std::string::npos)
      << tok.message();

  write_file(dir + "/tokenizer_config.json", R"({"add_bos_token": "yes"})");
  tok = load_tokenizer_json(dir);
  ASSERT_FALSE(tok);
  EXPECT_NE(tok.message().find("add_bos_token"), std::string::npos) << tok.message();
}

TEST(GgufTokenizerErrors, NameTheKey) {
  gguf_file file;
  auto none = load_tokenizer_gguf(file);
  ASSERT_FALSE(none);
  EXPECT_NE(none.message().find("tokenizer.ggml.model"), std::string::npos);

  file.metadata["tokenizer.ggml.model"] = gguf_value{std::string("bert")};
  auto bert = load_tokenizer_gguf(file);
  ASSERT_FALSE(bert);
  EXPECT_NE(bert.message().find("tokenizer.ggml.model"), std::string::npos) << bert.message();
  EXPECT_NE(bert.message().find("\"bert\""), std::string::npos) << bert.message();

  file.metadata["tokenizer.ggml.model"] = gguf_value{std::string("llama")};
  file.metadata["tokenizer.ggml.tokens"] = gguf_value{gguf_array{gguf_value{std::string("a")}}};
  auto no_scores = load_tokenizer_gguf(file);
  ASSERT_FALSE(no_scores);
  EXPECT_NE(no_scores.message().find("tokenizer.ggml.scores: missing"), std::string::npos)
      << no_scores.message();
  file.metadata.erase("tokenizer.ggml.tokens");

  file.metadata["tokenizer.ggml.model"] = gguf_value{std::string("gpt2")};
  file.metadata["tokenizer.ggml.pre"] = gguf_value{std::string("mystery")};
  auto pre = load_tokenizer_gguf(file);
  ASSERT_FALSE(pre);
  EXPECT_NE(pre.message().find("tokenizer.ggml.pre"), std::string::npos) << pre.message();

  file.metadata["tokenizer.ggml.pre"] = gguf_value{std::string("gpt2")};
  file.metadata["tokenizer.ggml.tokens"] =
      gguf_value{gguf_array{gguf_value{std::string("a")}, gguf_value{int32_t{3}}}};
  auto tokens = load_tokenizer_gguf(file);
  ASSERT_FALSE(tokens);
  EXPECT_NE(tokens.message().find("tokenizer.ggml.tokens[1]"), std::string::npos)
      << tokens.message();

  file.metadata["tokenizer.ggml.tokens"] =
      gguf_value{gguf_array{gguf_value{std::string("a")}, gguf_value{std::string("b")}}};
  file.metadata["tokenizer.ggml.merges"] = gguf_value{gguf_array{gguf_value{std::string("a c")}}};
  auto merges = load_tokenizer_gguf(file);
  ASSERT_FALSE(merges);
  EXPECT_NE(merges.message().find("tokenizer.ggml.merges[0]"), std::string::npos)
      << merges.message();

  file.metadata["tokenizer.ggml.merges"] = gguf_value{gguf_array{}};
  file.metadata["tokenizer.ggml.eos_token_id"] = gguf_value{uint32_t{7}};
  auto eos = load_tokenizer_gguf(file);
  ASSERT_FALSE(eos);
  EXPECT_NE(eos.message().find("tokenizer.ggml.eos_token_id"), std::string::npos) << eos.message();
}

}  // namespace
}  // namespace troupe::engine
