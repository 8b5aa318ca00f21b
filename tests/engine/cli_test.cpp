// The `troupe` binary as a user runs it: make-tiny, generate (text and --json), bench engine, and
// clear errors with non-zero exit codes for bad input.
#include "tests/test_tmp.hpp"
#include <gtest/gtest.h>
#include <simdjson.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <sys/wait.h>

#include "engine/tokenizer/tokenizer.hpp"

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
  for (auto lp : simdjson::dom::array(doc["logprobs"])) {
    simdjson::dom::array top = lp["top"];
    ASSERT_EQ(top.size(), 2u) << r.out;  // --logprobs 2: two alternatives, each a token and its logprob
    for (auto alt : top) {
      EXPECT_FALSE(alt["token"].error()) << r.out;
      EXPECT_FALSE(alt["logprob"].error()) << r.out;
    }
  }
  EXPECT_EQ(std::string_view(doc["finish_reason"]), "length");
  std::string_view text;
  EXPECT_EQ(doc["text"].get_string().get(text), simdjson::SUCCESS);
}

TEST(cli, generate_streams_text_and_gguf_runs_too) {
  auto r = run("generate --model " + model_dir() + ".gguf --prompt-tokens 1,2,3 --max-tokens 5 --seed 3");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("finish:"), std::string::npos) << r.out;
}

TEST(cli, generate_with_tensor_parallel_ranks_gives_the_same_greedy_tokens) {
  const std::string base = "generate --model " + model_dir() + " --prompt 'Tensor parallel' --max-tokens 16 --temperature 0 --json";
  const auto one = run(base);
  ASSERT_EQ(one.code, 0) << one.out;
  const auto tokens = [](const std::string& json) {
    const auto at = json.find("\"tokens\":");
    return at == std::string::npos ? std::string("<none>") : json.substr(at, json.find(']', at) - at);
  };
  for (const char* tp : {"2", "4"}) {  // 4 heads, 2 kv heads: split at 2, replicated at 4
    const auto sharded = run(base + " --tp " + tp);
    ASSERT_EQ(sharded.code, 0) << sharded.out;
    EXPECT_EQ(tokens(sharded.out), tokens(one.out)) << "tp " << tp;
  }
  const auto bad = run(base + " --tp 3");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.out.find("num_attention_heads = 4 is not divisible by tp"), std::string::npos) << bad.out;
}

// `generate --tp` runs rank 0's continuous-batching engine over the shard group executor (as
// serving does) where `--tp 1` runs the single-sequence loop: the same tokens, text and finish,
// with a stop string cutting the text (the engine's request is aborted there), with logprobs, and
// with max_tokens beyond the context (both stop at its end).
TEST(cli, generate_tp_through_the_serving_engine_keeps_text_stops_and_limits) {
  struct gen {
    std::vector<int64_t> tokens;
    std::string text, finish;
    size_t logprobs = 0;
  };
  const auto parse = [](const process_result& r) {
    gen g;
    simdjson::dom::parser p;
    simdjson::dom::element doc;
    EXPECT_EQ(p.parse(r.out).get(doc), simdjson::SUCCESS) << r.out;
    if (!doc.is_object()) return g;
    for (auto t : simdjson::dom::array(doc["tokens"])) g.tokens.push_back(int64_t(t));
    g.text = std::string(std::string_view(doc["text"]));
    g.finish = std::string(std::string_view(doc["finish_reason"]));
    g.logprobs = simdjson::dom::array(doc["logprobs"]).size();
    return g;
  };
  const std::string base = "generate --model " + model_dir() + " --prompt 'Tensor parallel' --temperature 0 "
                           "--ignore-eos --json";
  const gen one = parse(run(base + " --max-tokens 24 --logprobs 2"));
  const gen two = parse(run(base + " --max-tokens 24 --logprobs 2 --tp 2"));
  ASSERT_EQ(one.tokens.size(), 24u);
  EXPECT_EQ(two.tokens, one.tokens);
  EXPECT_EQ(two.text, one.text);
  EXPECT_EQ(two.finish, "length");
  EXPECT_EQ(two.logprobs, 24u);

  // A stop string from the middle of the text: the first 3 letters in a row after its start (the
  // random model's text is mostly not letters; a cut UTF-8 character would not pass the shell).
  size_t at = 1;
  const auto letter = [&one](size_t i) { return i < one.text.size() && std::isalpha((unsigned char)one.text[i]); };
  while (at + 3 <= one.text.size() && !(letter(at) && letter(at + 1) && letter(at + 2))) ++at;
  ASSERT_LT(at + 3, one.text.size()) << one.text;
  const std::string stop = one.text.substr(at, 3);
  const gen stop_one = parse(run(base + " --max-tokens 24 --stop " + stop));
  const gen stop_two = parse(run(base + " --max-tokens 24 --stop " + stop + " --tp 2"));
  EXPECT_EQ(stop_one.finish, "stop");
  EXPECT_EQ(stop_two.finish, "stop");
  EXPECT_EQ(stop_two.text, stop_one.text);
  EXPECT_EQ(stop_two.tokens, stop_one.tokens);
  EXPECT_EQ(stop_two.text.find(stop), std::string::npos) << stop_two.text;

  // max_tokens past the context (256 positions): both end at the context's end.
  const gen long_one = parse(run(base + " --max-tokens 1000"));
  const gen long_two = parse(run(base + " --max-tokens 1000 --tp 2"));
  EXPECT_EQ(long_one.finish, "length");
  EXPECT_EQ(long_two.finish, "length");
  EXPECT_EQ(long_two.tokens.size(), long_one.tokens.size());
  EXPECT_LT(long_one.tokens.size(), 256u);
}

TEST(cli, a_device_that_is_not_there_is_a_clear_error) {
  const std::string base = "generate --model " + model_dir() + " --prompt hi --max-tokens 2 --device ";
  const auto tpu = run(base + "tpu");
  EXPECT_NE(tpu.code, 0);
  EXPECT_NE(tpu.out.find("--device 'tpu': give cpu, cuda or cuda:N"), std::string::npos) << tpu.out;
  const auto bad_index = run(base + "cuda:x");
  EXPECT_NE(bad_index.code, 0);
  EXPECT_NE(bad_index.out.find("give cpu, cuda or cuda:N"), std::string::npos) << bad_index.out;
  // Without CUDA in the build, or without a device 97, either way an error naming the device.
  const auto far = run(base + "cuda:97");
  EXPECT_NE(far.code, 0);
  EXPECT_NE(far.out.find("--device cuda:97"), std::string::npos) << far.out;
  const auto tp_gpu = run(base + "cuda:97 --tp 2");  // each rank names its device
  EXPECT_NE(tp_gpu.code, 0);
  EXPECT_NE(tp_gpu.out.find("--device cuda:97"), std::string::npos) << tp_gpu.out;
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
                          "memory_bandwidth_gb_s", "weights_read_gb_s", "fresh_buffer_roofline_fraction",
                          "peak_rss_mb"}) {
    double v = 0;
    EXPECT_EQ(doc[key].get_double().get(v), simdjson::SUCCESS) << key << " in " << r.out;
    EXPECT_GT(v, 0.0) << key;
  }
}

// The serving benchmark: one result per concurrency with the documented fields; with a shared
// prefix, later requests hit the prefix cache.
TEST(cli, bench_engine_concurrency_json_has_the_documented_fields) {
  auto r = run("bench engine --model " + model_dir() + " --concurrency 1,3 --prompt-len 40 --gen 4 "
               "--shared-prefix 32 --max-batched-tokens 64 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  ASSERT_EQ(p.parse(r.out).get(doc), simdjson::SUCCESS) << r.out;
  std::vector<int64_t> seen;
  for (simdjson::dom::element res : doc["results"].get_array()) {
    seen.push_back(int64_t(res["concurrency"]));
    EXPECT_GT(double(res["output_tokens_per_s"]), 0.0) << r.out;
    for (const char* q : {"p50", "p90", "p99"}) {
      EXPECT_GE(double(res["ttft_ms"][q]), 0.0) << r.out;
      EXPECT_GE(double(res["tpot_ms"][q]), 0.0) << r.out;
    }
    EXPECT_GT(double(res["kv_used_fraction"]), 0.0) << r.out;
    EXPECT_GT(double(res["first_ttft_ms"]), 0.0) << r.out;
  }
  EXPECT_EQ(seen, (std::vector<int64_t>{1, 3}));
  EXPECT_GT(double(doc["results"].at(1)["prefix_hit_rate"]), 0.0) << r.out;
  // The arithmetic rate is counted where the work is known (one request alone, no cache hits), and
  // against the measured peak (where the path has one for the weights) it is below 1: the tiny
  // model keeps the machine far from its peak.
  double gflops = 0, fraction = 0;
  EXPECT_EQ(doc["results"].at(0)["compute_gflops"].get_double().get(gflops), simdjson::SUCCESS) << r.out;
  EXPECT_GT(gflops, 0.0) << r.out;
  if (doc["peak_gflops"].error() == simdjson::SUCCESS) {
    EXPECT_EQ(doc["results"].at(0)["compute_peak_fraction"].get_double().get(fraction), simdjson::SUCCESS) << r.out;
    EXPECT_GT(fraction, 0.0) << r.out;
    EXPECT_LT(fraction, 1.0) << r.out;
  }
  // Prefix-cache hits skipped work the count cannot see: no figure then.
  EXPECT_NE(doc["results"].at(1)["compute_gflops"].error(), simdjson::SUCCESS) << r.out;
  auto bad = run("bench engine --model " + model_dir() + " --concurrency 0 --prompt-len 8 --gen 2");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.out.find("--concurrency"), std::string::npos) << bad.out;
}

// --chat renders the model's own template (the Llama 3 layout make-tiny writes for llama) with the
// generation prompt, and the prompt ids are that text encoded without adding specials again.
TEST(cli, chat_renders_the_models_template) {
  auto r = run("generate --model " + model_dir() + " --chat 'Hello there' --system 'Be brief' "
               "--max-tokens 2 --temperature 0 --ignore-eos --json");
  ASSERT_EQ(r.code, 0) << r.out;
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  ASSERT_EQ(p.parse(r.out).get(doc), simdjson::SUCCESS) << r.out;
  auto tok = load_tokenizer_json(model_dir());
  ASSERT_TRUE(tok) << tok.message();
  const std::string expected_text =
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nHello there<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n";
  std::vector<int32_t> got;
  for (simdjson::dom::element id : doc["prompt_tokens"].get_array()) got.push_back(int32_t(int64_t(id)));
  EXPECT_EQ(got, (*tok)->encode(expected_text, false));
  EXPECT_EQ((*tok)->decode(got), expected_text);

  // The GGUF copy carries the same template.
  auto g = run("generate --model " + model_dir() + ".gguf --chat 'Hello there' --system 'Be brief' "
               "--max-tokens 2 --temperature 0 --ignore-eos --json");
  ASSERT_EQ(g.code, 0) << g.out;
  EXPECT_NE(g.out.find(r.out.substr(0, r.out.find("\"tokens\""))), std::string::npos) << g.out;

  // A model without a template, and one whose template does not parse: clear errors.
  const std::string bare = test::process_tmp() + "/cli_model_no_template";
  std::filesystem::remove_all(bare);
  std::filesystem::copy(model_dir(), bare);
  for (const auto& [config, fragment] :
       {std::pair{std::string(R"({"eos_token": "<|eot_id|>"})"), std::string("has no chat template")},
        std::pair{std::string(R"({"eos_token": "<|eot_id|>", "chat_template": "{% for m in %}"})"),
                  std::string("chat template: line 1")}}) {
    FILE* f = std::fopen((bare + "/tokenizer_config.json").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(config.c_str(), f);
    std::fclose(f);
    auto e = run("generate --model " + bare + " --chat hi");
    EXPECT_EQ(e.code, 2) << e.out;
    EXPECT_NE(e.out.find(fragment), std::string::npos) << e.out;
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
      {"generate --model " + model_dir() + " --system hi --prompt x", "--system requires --chat"},
      {"generate --model " + model_dir() + " --chat hi --prompt x", "excludes"},
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
