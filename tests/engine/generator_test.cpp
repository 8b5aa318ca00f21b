// The generation loop: stop tokens, stop strings (held back while they might still match), max
// tokens, seeds, logprobs, streaming deltas that add up to the text, and request validation.
#include <gtest/gtest.h>

#include "engine/cpu_backend.hpp"
#include "engine/generator.hpp"
#include "engine/model_tokenizer.hpp"
#include "engine/stop_strings.hpp"
#include "engine/tokenizer/utf8.hpp"
#include "tests/engine/test_models.hpp"

namespace troupe::engine {
namespace {

// `s` with each maximal invalid UTF-8 subpart replaced by U+FFFD, as streamed text is.
std::string lossy(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const auto seq = utf8_check(s, i);
    out += seq.status == utf8_status::valid ? s.substr(i, seq.length) : std::string(utf8_replacement);
    i += seq.length;
  }
  return out;
}


class generator_test : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = load_model(test::tiny_model("gen_llama", test::small_spec()));
    ASSERT_TRUE(m) << m.message();
    model_ = *m;
    auto tok = load_tokenizer_for(*model_);
    ASSERT_TRUE(tok) << tok.message();
    tok_ = std::move(*tok);
    be_ = make_cpu_backend(2);
    auto fwd = llama_forward::create(model_, *be_, 32);
    ASSERT_TRUE(fwd) << fwd.message();
    fwd_ = std::move(*fwd);
  }

  request greedy(int32_t max_tokens) {
    request r;
    r.prompt = tok_->encode("The router streams tokens to every client.");
    r.max_tokens = max_tokens;
    r.sampling.temperature = 0;
    r.stop.ignore_eos = true;
    return r;
  }

  generation_result run(const request& r, std::string* streamed = nullptr) {
    auto out = generate(*fwd_, *tok_, r, [streamed](const generation_event& ev) {
      if (streamed) *streamed += ev.text_delta;
    });
    EXPECT_TRUE(out) << out.message();
    return out ? *out : generation_result{};
  }

  std::shared_ptr<const model> model_;
  std::unique_ptr<tokenizer> tok_;
  std::unique_ptr<backend> be_;
  std::unique_ptr<llama_forward> fwd_;
};

TEST_F(generator_test, max_tokens_and_streamed_text_equal_the_result) {
  std::string streamed;
  auto r = run(greedy(20), &streamed);
  EXPECT_EQ(r.tokens.size(), 20u);
  EXPECT_EQ(r.finish, finish_reason::length);
  EXPECT_EQ(streamed, r.text);
  // Random weights may emit a partial UTF-8 character; the streamed text replaces it with U+FFFD.
  EXPECT_TRUE(utf8_is_valid(r.text));
  const std::string raw = tok_->decode(r.tokens, true);
  if (utf8_is_valid(raw)) {
    EXPECT_EQ(r.text, raw);
  }
}

// A SentencePiece vocabulary (make-tiny's mistral): generated text continues the prompt, so a
// first "▁word" keeps its space, exactly as decoding prompt + output and cutting the prompt off.
TEST(generator_sentencepiece, text_continues_the_prompt) {
  auto spec = test::small_spec();
  spec.arch = "mistral";
  spec.vocab = 2000;
  auto m = load_model(test::tiny_model("gen_mistral", spec));
  ASSERT_TRUE(m) << m.message();
  auto tok = load_tokenizer_for(**m);
  ASSERT_TRUE(tok) << tok.message();
  ASSERT_TRUE((*tok)->strips_leading_space());
  auto be = make_cpu_backend(2);
  auto fwd = llama_forward::create(*m, *be, 32);
  ASSERT_TRUE(fwd) << fwd.message();
  const auto run = [&](const std::string& prompt_text, int32_t max_tokens) {
    request r;
    r.prompt = (*tok)->encode(prompt_text);
    r.max_tokens = max_tokens;
    r.sampling.temperature = 0;
    r.stop.ignore_eos = true;
    std::string streamed;
    auto out = generate(**fwd, **tok, r, [&streamed](const generation_event& ev) { streamed += ev.text_delta; });
    EXPECT_TRUE(out) << out.message();
    EXPECT_EQ(streamed, out->text);
    std::vector<int32_t> all = r.prompt;
    all.insert(all.end(), out->tokens.begin(), out->tokens.end());
    const std::string prompt = (*tok)->decode(r.prompt, true);
    EXPECT_EQ(out->text, lossy((*tok)->decode(all, true)).substr(prompt.size())) << prompt_text;
    return *out;
  };
  run("The router streams tokens to", 12);
  // Find a prompt whose first generated token is a "▁word": its text must start with the space.
  int found = 0;
  for (const std::string word : {"a", "the", "of", "router", "and", "stream", "to", "is", "we",
                                 "client", "model", "token", "cache", "in", "on", "it"}) {
    const generation_result out = run(word, 1);
    if ((*tok)->token_bytes(out.tokens[0]).starts_with(' ')) {
      EXPECT_TRUE(out.text.starts_with(' ')) << word << ": \"" << out.text << "\"";
      ++found;
    }
  }
  EXPECT_GT(found, 0) << "no prompt led to a \"▁word\" token; pick other prompts";
}

TEST_F(generator_test, greedy_is_deterministic_and_seed_repeats_sampling) {
  EXPECT_EQ(run(greedy(12)).tokens, run(greedy(12)).tokens);
  auto r = greedy(24);
  r.sampling.temperature = 1.5f;
  r.sampling.seed = 42;
  const auto a = run(r).tokens;
  EXPECT_EQ(a, run(r).tokens);
  r.sampling.seed = 43;
  EXPECT_NE(a, run(r).tokens);
}

TEST_F(generator_test, stop_token_ends_generation_and_is_kept_out_of_the_text) {
  const auto full = run(greedy(12));
  auto r = greedy(12);
  r.stop.token_ids = {full.tokens[5]};
  const size_t first = size_t(std::find(full.tokens.begin(), full.tokens.end(), full.tokens[5]) - full.tokens.begin());
  auto s = run(r);
  EXPECT_EQ(s.finish, finish_reason::stop);
  ASSERT_EQ(s.tokens.size(), first + 1);
  // Random weights may emit stray bytes: the streamed text holds U+FFFD for them.
  EXPECT_EQ(s.text, lossy(tok_->decode(std::vector<int32_t>(full.tokens.begin(), full.tokens.begin() + long(first)), true)));
}

TEST_F(generator_test, stop_string_cuts_the_text_and_is_never_streamed) {
  const auto full = run(greedy(24));
  ASSERT_GT(full.text.size(), 12u);
  // A stop string taken from the middle of the greedy output, spanning token boundaries.
  const std::string stop = full.text.substr(6, 5);
  auto r = greedy(24);
  r.stop.strings = {stop};
  std::string streamed;
  auto s = run(r, &streamed);
  EXPECT_EQ(s.finish, finish_reason::stop);
  const size_t at = full.text.find(stop);
  EXPECT_EQ(s.text, full.text.substr(0, at));
  EXPECT_EQ(streamed, s.text);
  EXPECT_EQ(streamed.find(stop), std::string::npos);
}

TEST_F(generator_test, logprobs_are_reported_per_token) {
  auto r = greedy(6);
  r.sampling.logprobs = 3;
  auto s = run(r);
  ASSERT_EQ(s.logprobs.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(s.logprobs[i].token, s.tokens[i]);
    EXPECT_LE(s.logprobs[i].logprob, 0.0f);
    ASSERT_EQ(s.logprobs[i].top.size(), 3u);
    EXPECT_EQ(s.logprobs[i].top[0].token, s.tokens[i]);  // greedy picks the best
    EXPECT_GE(s.logprobs[i].top[0].logprob, s.logprobs[i].top[1].logprob);
  }
}

TEST_F(generator_test, context_limit_ends_with_length) {
  auto r = greedy(1000);  // the model's context is 128 tokens
  auto s = run(r);
  EXPECT_EQ(s.finish, finish_reason::length);
  EXPECT_EQ(int64_t(s.prompt_tokens.size() + s.tokens.size()), model_->config.max_position);
}

TEST_F(generator_test, invalid_requests_get_clear_errors) {
  auto expect_error = [this](request r, const std::string& fragment) {
    auto out = generate(*fwd_, *tok_, r, nullptr);
    ASSERT_FALSE(out);
    EXPECT_NE(out.message().find(fragment), std::string::npos) << out.message();
  };
  auto r = greedy(4);
  r.prompt.clear();
  expect_error(r, "empty");
  r = greedy(4);
  r.prompt.push_back(512);
  expect_error(r, "outside the vocabulary");
  r = greedy(4);
  r.prompt.assign(128, 1);
  expect_error(r, "context length is 128");
  r = greedy(0);
  expect_error(r, "max_tokens");
  r = greedy(4);
  r.sampling.temperature = -1;
  expect_error(r, "temperature");
}

TEST(stop_strings, find_and_hold_back) {
  stop_string_matcher m({"</s>", "STOP"});
  EXPECT_EQ(m.find("abc</s>def", 0), 3u);
  EXPECT_FALSE(m.find("abc</", 0));
  EXPECT_EQ(m.held_back("abc</"), 2u);
  EXPECT_EQ(m.held_back("xxST"), 2u);
  EXPECT_EQ(m.held_back("abc"), 0u);
  EXPECT_EQ(m.find("aaSTOP", 4), 2u);  // a match that began before `from`
}

}  // namespace
}  // namespace troupe::engine
