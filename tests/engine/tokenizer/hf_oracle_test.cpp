// Token ids against Hugging Face's own tokenizer code (transformers.js from npm, run by node): for a
// tokenizer.json of each family -- GPT-2, Llama 3, Qwen2 (byte-level BPE), Llama 2, Mistral, Gemma
// (SentencePiece BPE), built here from vocabularies the tests train, plus the real Llama 2 vocabulary
// from npm -- every text of a mixed corpus must encode to exactly the oracle's ids, with and without
// special tokens, and decode to exactly the oracle's text. The GGUF form of each family (where one
// exists) must give the same ids, and streaming detokenization must add up to the full decode.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <filesystem>
#include <map>

#include "common/json_escape.hpp"
#include "engine/tokenizer/incremental_decoder.hpp"
#include "engine/tokenizer/tokenizer.hpp"
#include "engine/tokenizer/utf8.hpp"
#include "tests/test_oracle.hpp"
#include "tests/test_tmp.hpp"

namespace troupe::engine {
namespace {

namespace fs = std::filesystem;
using ids = std::vector<int32_t>;

// ASCII, accented Latin (precomposed and decomposed), CJK, emoji, digits, whitespace runs, code,
// other scripts and special-token strings written in the text.
const std::vector<std::string>& corpus() {
  static const std::vector<std::string> texts = {
      "Hello world",
      "The quick brown fox jumps over the lazy dog.",
      " leading space",
      "   three leading spaces and trailing   ",
      "Crème brûlée, naïve façade, São Paulo, Zürich, Ångström, Łódź, Nguyễn.",
      "Decomposed: Cre\xCC\x80me (e + U+0300), n\xCC\x83 and A\xCC\x8A",
      "東京で日本語を話します。漢字と中文，한국어도 있어요.",
      "Emoji: 🚀🦀😀 👨‍👩‍👧 🇯🇵 ✨🙂 and ☕️",
      "Numbers 1234567890, 3.14159, -42, 1,000,000 and ١٢٣ ٤٥٦",
      "tabs\tand\t\ttabs, newlines\n\n\nand CRLF\r\n and\n  indented\n\tlines",
      "for (int i = 0; i < n; ++i) {\n    sum += a[i] * b[i];  // dot\n}\nreturn x >= 0 ? x : -x;",
      "def f(x):\n    return {'a': [1, 2], \"b\": None}  # comment",
      "don't we'll they've I'M 'S HE'D you're",
      "Русский текст, Ελληνικά, עברית, العربية, हिन्दी, ไทย",
      "no-break\xC2\xA0space and ideographic\xE3\x80\x80space and zero\xE2\x80\x8Bwidth",
      "<s>hello</s>",
      "text <|begin_of_text|>special<|eot_id|> inside",
      "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
      "[INST] Do it [/INST] ok</s>",
      "<start_of_turn>user\nhi<end_of_turn>\n",
      "a <extra> b<extra>c   <extra>   d",
      "ab cd and ab  cd and xab cdx",
      "",
      " ",
      "\n",
      "x",
  };
  return texts;
}

// One line of a tokenizer.json written by train_bpe_tokenizer_json: "  \"key\": value,\n".
void set_line(std::string& json, const std::string& key, const std::string& value) {
  const std::string head = "\n  \"" + key + "\": ";
  const size_t at = json.find(head);
  ASSERT_NE(at, std::string::npos) << key;
  const size_t end = json.find(",\n", at + head.size());
  json.replace(at + head.size(), end - at - head.size(), value);
}

// Replaces the added_tokens list.
void set_added(std::string& json, const std::string& list) {
  const size_t at = json.find("\"added_tokens\": [");
  const size_t end = json.find("\n  \"normalizer\"");
  ASSERT_TRUE(at != std::string::npos && end != std::string::npos);
  json.replace(at, end - at, "\"added_tokens\": " + list + ",");
}

std::string added(int64_t id, const std::string& content, bool special, const std::string& extra = "") {
  return "{\"id\": " + std::to_string(id) + ", \"content\": " + json_string(content) +
         ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": " +
         (special ? "false" : "true") + ", \"special\": " + (special ? "true" : "false") + extra +
         "}";
}

std::string template_processing(const std::string& token, int64_t id) {
  return R"({"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": )" +
         json_string(token) + R"(, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "pair": [], "special_tokens": {)" +
         json_string(token) + R"(: {"id": )" + json_string(token) + R"(, "ids": [)" +
         std::to_string(id) + R"(], "tokens": [)" + json_string(token) + "]}}}";
}

std::string split_pre(std::string_view regex) {
  return R"({"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": )" +
         json_string(regex) +
         R"(}, "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]})";
}

struct family {
  std::string name;
  std::string json;
  std::string config;
  bool has_gguf = true;  // tokenizer_gguf_metadata must succeed (else: must fail clearly)
};

constexpr int32_t model_size = 3000;  // trained model tokens; added tokens follow

std::string trained(tokenizer_style style) {
  auto json = train_bpe_tokenizer_json(default_training_corpus(), model_size, {}, style);
  EXPECT_TRUE(json) << json.message();
  return json ? *json : std::string();
}

std::vector<family> families() {
  std::vector<family> out;
  const std::string gpt2_regex =
      R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
  const std::string llama3_regex =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  const std::string qwen2_regex =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  const std::string byte_level = trained(tokenizer_style::byte_level);
  const std::string sentencepiece = trained(tokenizer_style::sentencepiece);
  const auto id = [](int32_t k) { return model_size + k; };

  {  // GPT-2: the ByteLevel pre-tokenizer's own regex; <|endoftext|>.
    family f{"gpt2", byte_level, R"({"eos_token": "<|endoftext|>", "bos_token": "<|endoftext|>"})"};
    set_added(f.json, "[" + added(id(0), "<|endoftext|>", true) + "]");
    out.push_back(std::move(f));
  }
  {  // Llama 3: Split + ByteLevel without regex, ignore_merges, <|begin_of_text|> template.
    family f{"llama3", byte_level,
             R"({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"})"};
    const std::string specials = added(id(0), "<|begin_of_text|>", true) + ", " +
                                 added(id(1), "<|end_of_text|>", true) + ", " +
                                 added(id(2), "<|eot_id|>", true);
    set_added(f.json, "[" + specials + "]");
    set_line(f.json, "pre_tokenizer", split_pre(llama3_regex));
    set_line(f.json, "post_processor", template_processing("<|begin_of_text|>", id(0)));
    f.json.replace(f.json.find("\"ignore_merges\": false"), 22, "\"ignore_merges\": true");
    // The same with a non-special added token that swallows whitespace on both sides, which
    // GGUF cannot express.
    family strip = f;
    strip.name = "llama3-strip";
    set_added(strip.json, "[" + specials + ", {\"id\": " + std::to_string(id(3)) +
                              ", \"content\": \"<extra>\", \"single_word\": false, \"lstrip\": "
                              "true, \"rstrip\": true, \"normalized\": false, \"special\": false}]");
    strip.has_gguf = false;
    out.push_back(std::move(f));
    out.push_back(std::move(strip));
  }
  {  // Qwen2: NFC, its regex, ChatML specials, no bos.
    family f{"qwen2", byte_level,
             R"({"eos_token": "<|im_end|>", "add_bos_token": false, "bos_token": null})"};
    set_added(f.json, "[" + added(id(0), "<|endoftext|>", true) + ", " +
                          added(id(1), "<|im_start|>", true) + ", " + added(id(2), "<|im_end|>", true) +
                          "]");
    set_line(f.json, "normalizer", R"({"type": "NFC"})");
    set_line(f.json, "pre_tokenizer", split_pre(qwen2_regex));
    out.push_back(std::move(f));
  }
  {  // Llama 2 (as trained: legacy Prepend/Replace normalizer, Strip decoder), plus a normalized
     // non-special added token that holds a space.
    family f{"llama2", sentencepiece,
             R"({"add_bos_token": true, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"})"};
    set_added(f.json, "[" + added(0, "<unk>", true) + ", " + added(1, "<s>", true) + ", " +
                          added(2, "</s>", true) + ", " + added(id(0), "ab cd", false) + "]");
    f.has_gguf = false;  // a normalized added token has no GGUF form (llama.cpp matches raw text)
    out.push_back(std::move(f));
    family plain{"llama2-plain", sentencepiece,
                 R"({"add_bos_token": true, "bos_token": "<s>", "eos_token": "</s>"})"};
    out.push_back(std::move(plain));
  }
  {  // Mistral (transformers' non-legacy conversion): Metaspace with prepend_scheme "first".
    family f{"mistral", sentencepiece, R"({"bos_token": "<s>", "eos_token": "</s>"})"};
    set_added(f.json, "[" + added(0, "<unk>", true) + ", " + added(1, "<s>", true) + ", " +
                          added(2, "</s>", true) + ", " + added(id(0), "[INST]", true) + ", " +
                          added(id(1), "[/INST]", true) + "]");
    set_line(f.json, "normalizer", "null");
    set_line(f.json, "pre_tokenizer",
             R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false})");
    f.has_gguf = false;  // llama.cpp has no "first" scheme: the GGUF writer must refuse it
    out.push_back(std::move(f));
  }
  {  // The Llama 3 and Qwen2 layouts as the trainer writes them (make-tiny's llama and qwen2).
    family l{"llama3-trained", trained(tokenizer_style::llama3), "{}"};
    family q{"qwen2-trained", trained(tokenizer_style::qwen2), "{}"};
    out.push_back(std::move(l));
    out.push_back(std::move(q));
  }
  {  // Gemma: Replace only (no prepended space), no Strip in the decoder, <bos> template.
    family f{"gemma", sentencepiece, R"({"bos_token": "<s>", "eos_token": "<end_of_turn>"})"};
    set_added(f.json, "[" + added(0, "<unk>", true) + ", " + added(1, "<s>", true) + ", " +
                          added(2, "</s>", true) + ", " + added(id(0), "<start_of_turn>", true) +
                          ", " + added(id(1), "<end_of_turn>", true) + "]");
    set_line(f.json, "normalizer",
             R"({"type": "Replace", "pattern": {"String": " "}, "content": "▁"})");
    set_line(f.json, "decoder",
             R"({"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}]})");
    out.push_back(std::move(f));
  }
  return out;
}

struct oracle_answer {
  std::vector<ids> with_special, without_special;
  std::vector<std::string> decoded, decoded_skip;
};

// Runs the oracle on `dir` for the corpus, decoding `to_decode`.
oracle_answer ask_oracle(const std::string& dir, const std::vector<ids>& to_decode) {
  std::string input = "{\"dir\": " + json_string(dir) + ", \"texts\": [";
  for (size_t i = 0; i < corpus().size(); ++i) {
    if (i) input += ", ";
    append_json_string(input, corpus()[i]);
  }
  input += "], \"decode\": [";
  for (size_t i = 0; i < to_decode.size(); ++i) {
    input += i ? ", [" : "[";
    for (size_t k = 0; k < to_decode[i].size(); ++k)
      input += (k ? "," : "") + std::to_string(to_decode[i][k]);
    input += "]";
  }
  input += "]}";
  const std::string path = dir + "/oracle-input.json";
  test::write_file(path, input);
  const auto result = test::run_oracle("tokenize.mjs", path);
  EXPECT_TRUE(result.ok) << result.output;
  oracle_answer a;
  if (!result.ok) return a;
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.parse(result.output);
  for (const auto& [key, target] : {std::pair{"with_special", &a.with_special},
                                    std::pair{"without_special", &a.without_special}}) {
    for (simdjson::dom::element list : root[key].get_array()) {
      ids v;
      for (simdjson::dom::element x : list.get_array()) v.push_back(int32_t(int64_t(x)));
      target->push_back(std::move(v));
    }
  }
  for (const auto& [key, target] :
       {std::pair{"decoded", &a.decoded}, std::pair{"decoded_skip", &a.decoded_skip}}) {
    for (simdjson::dom::element s : root[key].get_array())
      target->emplace_back(std::string_view(s));
  }
  return a;
}

std::string show(const ids& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

// Every text's ids and decodes against the oracle; returns the ids (with specials) per text.
void expect_matches_oracle(const tokenizer& tok, const std::string& dir, const std::string& what) {
  std::vector<ids> mine, mine_plain;
  for (const auto& text : corpus()) {
    mine.push_back(tok.encode(text, true));
    mine_plain.push_back(tok.encode(text, false));
  }
  const oracle_answer a = ask_oracle(dir, mine);
  ASSERT_EQ(a.with_special.size(), corpus().size()) << what;
  for (size_t i = 0; i < corpus().size(); ++i) {
    const std::string& text = corpus()[i];
    EXPECT_EQ(mine[i], a.with_special[i])
        << what << ": text " << i << " \"" << text << "\"\n  ours:   " << show(mine[i])
        << "\n  oracle: " << show(a.with_special[i]);
    EXPECT_EQ(mine_plain[i], a.without_special[i])
        << what << " (no specials): text " << i << " \"" << text << "\"";
    if (utf8_is_valid(tok.decode(mine[i]))) {
      EXPECT_EQ(tok.decode(mine[i]), a.decoded[i]) << what << ": decode of text " << i;
      EXPECT_EQ(tok.decode(mine[i], true), a.decoded_skip[i])
          << what << ": decode (skip specials) of text " << i;
    }
  }
}

// Streaming: the deltas are valid UTF-8 and add up to the full decode.
void expect_streams_like_decode(const tokenizer& tok, const std::string& what) {
  for (const auto& text : corpus()) {
    const ids v = tok.encode(text, true);
    for (const bool skip : {false, true}) {
      incremental_decoder d(tok, skip);
      std::string streamed;
      for (const int32_t id : v) {
        const std::string delta = d.push(id);
        EXPECT_TRUE(utf8_is_valid(delta)) << what;
        streamed += delta;
      }
      streamed += d.flush();
      EXPECT_EQ(streamed, tok.decode(v, skip)) << what << ": \"" << text << "\" skip=" << skip;
    }
  }
}

class HfOracle : public ::testing::TestWithParam<family> {};

TEST_P(HfOracle, IdsAndTextMatchHuggingFace) {
  const family& f = GetParam();
  const std::string dir = test::process_tmp() + "/hf-" + f.name;
  fs::create_directories(dir);
  test::write_file(dir + "/tokenizer.json", f.json);
  test::write_file(dir + "/tokenizer_config.json", f.config);
  auto tok = load_tokenizer_json(dir);
  ASSERT_TRUE(tok) << tok.message();
  expect_matches_oracle(**tok, dir, f.name);
  expect_streams_like_decode(**tok, f.name);

  // The GGUF form: the same ids.
  auto md = tokenizer_gguf_metadata(dir);
  if (!f.has_gguf) {
    ASSERT_FALSE(md) << f.name << ": expected no GGUF form";
    EXPECT_FALSE(md.message().empty());
    return;
  }
  ASSERT_TRUE(md) << md.message();
  gguf_file file;
  file.metadata = std::move(*md);
  auto from_gguf = load_tokenizer_gguf(file);
  ASSERT_TRUE(from_gguf) << from_gguf.message();
  for (size_t i = 0; i < corpus().size(); ++i) {
    EXPECT_EQ((*from_gguf)->encode(corpus()[i]), (*tok)->encode(corpus()[i]))
        << f.name << " GGUF: text " << i << " \"" << corpus()[i] << "\"";
    EXPECT_EQ((*from_gguf)->decode((*tok)->encode(corpus()[i])),
              (*tok)->decode((*tok)->encode(corpus()[i])));
  }
}

INSTANTIATE_TEST_SUITE_P(Families, HfOracle, ::testing::ValuesIn(families()),
                         [](const ::testing::TestParamInfo<family>& info) {
                           std::string n = info.param.name;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// The real Llama 2 vocabulary and merges (32000 tokens, 61249 merges), from npm.
TEST(HfOracleLlama2, RealVocabularyMatchesHuggingFace) {
  const std::string dir = test::process_tmp() + "/llama2-real";
  fs::create_directories(dir);
  const auto made = test::run_oracle("llama2_tokenizer.mjs", dir);
  ASSERT_TRUE(made.ok) << made.output;
  auto tok = load_tokenizer_json(dir);
  ASSERT_TRUE(tok) << tok.message();
  EXPECT_EQ((*tok)->vocab_size(), 32000);
  // Known ids of the real tokenizer.
  EXPECT_EQ((*tok)->encode("Hello world"), (ids{1, 15043, 3186}));
  expect_matches_oracle(**tok, dir, "llama2-real");
  expect_streams_like_decode(**tok, "llama2-real");

  auto md = tokenizer_gguf_metadata(dir);
  ASSERT_TRUE(md) << md.message();
  gguf_file file;
  file.metadata = std::move(*md);
  auto from_gguf = load_tokenizer_gguf(file);
  ASSERT_TRUE(from_gguf) << from_gguf.message();
  for (const auto& text : corpus())
    EXPECT_EQ((*from_gguf)->encode(text), (*tok)->encode(text)) << "GGUF: \"" << text << "\"";
}

}  // namespace
}  // namespace troupe::engine
