// The `troupe` binary as a user runs it: make-tiny, generate (text and --json), bench engine, and
// clear errors with non-zero exit codes for bad input.
#include "tests/test_tmp.hpp"
#include <gtest/gtest.h>
#include <simdjson.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <sys/wait.h>

namespace troupe::engine {
namespace {

struct process_result {
  int code;
  std::string out;  // stdout and stderr
};

process_result run(const std::string& args) {
  const std::string cmd = std::string(TROUPE_BIN) + " " + args + " 2>&1";
  process_result r{-1, {}};
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string model_dir() {
  static const std::string dir = [] {
    const std::string d = test::process_tmp() + "/cli_model";
    std::filesystem::remove_all(d);
    auto r = run("model make-tiny " + d + " --layers 2 --dim 64 --heads 4 --kv-heads 2 --ffn 128 --vocab 400 "
                 "--max-position 256 --gguf " + d + ".gguf --gguf-type q8_0");
    EXPECT_EQ(r.code, 0) << r.out;
    return d;
  }();
  return dir;
}

TEST(cli, make_tiny_writes_a_complete_hf_folder_and_gguf) {
  const std::string d = model_dir();
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"})
    EXPECT_TRUE(std::filesystem::exists(d + "/" + f)) << f;
  EXPECT_TRUE(std::filesystem::exists(d + ".gguf"));
  auto info = run("model info " + d + ".gguf");
  EXPECT_EQ(info.code, 0) << info.out;
  EXPECT_NE(info.out.find("q8_0"), std::string::npos) << info.out;
}

TEST(cli, generate_json_has_the_documented_fields) {
  auto r = run("generate --model " + model_dir() + " --prompt 'Hello there' --max-tokens 7 --temperature 0 "
               "--logprobs 2 --ignore-eos --json");
  ASSERT_EQ(r.code, 0) << r.out;
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  ASSERT_EQ(p.parse(r.out).get(doc), simdjson::SUCCESS) << r.out;
  EXPECT_GT(simdjson::dom::array(doc["prompt_tokens"]).size(), 0u);
  EXPECT_EQ(simdjson::dom::array(doc["tokens"]).size(), 7u);
  EXPECT_EQ(simdjson::dom::array(doc["logprobs"]).size(), 7u);
  EXPECT_EQ(std::string_view(doc["finish_reason"]), "length");
  std::string_view text;
  EXPECT_EQ(doc["text"].get_string().get(text), simdjson::SUCCESS);
}

TEST(cli, generate_streams_text_and_gguf_runs_too) {
  auto r = run("generate --model " + model_dir() + ".gguf --prompt-tokens 1,2,3 --max-tokens 5 --seed 3");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("finish:"), std::string::npos) << r.out;
}

TEST(cli, no_mmap_gives_the_same_greedy_tokens) {
  const std::string args = "generate --model " + model_dir() + " --prompt 'abc def' --max-tokens 6 --temperature 0 "
                           "--ignore-eos --json";
  auto mapped = run(args);
  auto read = run(args + " --no-mmap");
  ASSERT_EQ(mapped.code, 0) << mapped.out;
  ASSERT_EQ(read.code, 0) << read.out;
  EXPECT_EQ(mapped.out, read.out);
}

TEST(cli, bench_engine_json_reports_every_documented_field) {
  auto r = run("bench engine --model " + model_dir() + ".gguf --prompt-len 32 --gen 4 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  ASSERT_EQ(p.parse(r.out).get(doc), simdjson::SUCCESS) << r.out;
  for (const char* key : {"prefill_tokens_per_s", "decode_tokens_per_s", "decode_roofline_fraction",
                          "memory_bandwidth_gb_s", "peak_rss_mb"}) {
    double v = 0;
    EXPECT_EQ(doc[key].get_double().get(v), simdjson::SUCCESS) << key << " in " << r.out;
    EXPECT_GT(v, 0.0) << key;
  }
}

TEST(cli, bad_input_exits_non_zero_with_a_message) {
  struct bad {
    std::string args, fragment;
  };
  const std::vector<bad> cases = {
      {"generate --model " + model_dir() + " --prompt-tokens 1,x,3", "'x' is not a token id"},
      {"generate --model " + model_dir() + " --prompt-tokens 1,400", "outside the vocabulary"},
      {"generate --model " + model_dir() + " --prompt hi --top-p 0", "top_p"},
      {"generate --model " + model_dir() + " --prompt hi --max-tokens 0", "max_tokens"},
      {"generate --model " + model_dir(), "--prompt"},
      {"generate --model /nonexistent/model --prompt hi", "/nonexistent/model"},
      {"model make-tiny " + test::process_tmp() + "/x --heads 5", "--heads"},
      {"model make-tiny " + test::process_tmp() + "/x --gguf-type q4_k", "--gguf-type"},
      {"bench engine --model " + model_dir() + " --prompt-len 250 --gen 10", "exceeds the model's context"},
      {"frobnicate", "frobnicate"},
  };
  for (const auto& c : cases) {
    auto r = run(c.args);
    EXPECT_NE(r.code, 0) << c.args;
    EXPECT_NE(r.out.find(c.fragment), std::string::npos) << c.args << "\n" << r.out;
  }
}

}  // namespace
}  // namespace troupe::engine
