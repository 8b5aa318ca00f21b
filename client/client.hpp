// The C++ client of Troupe's Cap'n Proto API (schema/troupe.capnp): connect with an API key, then
// blocking generate / chat calls that hand each streamed chunk to a callback, models and health.
//
// Threading: a client runs its own kj event loop on the thread that connected it, and every call
// must come from that thread (one call at a time). Several clients may live on one thread; clients
// on different threads are independent. Errors are values: the server's message (which names the
// offending parameter), or the connection's failure.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/expected.hpp"

namespace troupe::client {

// The HTTP API's sampling parameters, with its defaults and ranges (the server checks them).
struct sampling_options {
  int32_t max_tokens = 0;  // 0: until the context ends
  float temperature = 1.0f;  // [0, 2]; 0 = greedy
  float top_p = 1.0f;
  int32_t top_k = 0;  // 0 or -1 = off
  float min_p = 0.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  float repetition_penalty = 1.0f;
  int32_t n = 1;  // samples, 1..16
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  bool skip_special_tokens = true;
  std::optional<int64_t> seed;
  int32_t logprobs = -1;  // -1: none; 0: the chosen token's; N <= 20: plus the top N
  std::string user;
  bool cache = true;  // false: bypass the response cache
};

// A completion: `prompt_tokens` when not empty, else `prompt`.
struct request {
  std::string model;  // empty: the server's (first) model
  std::string prompt;
  std::vector<int32_t> prompt_tokens;
  sampling_options sampling;
};

struct message {
  std::string role;  // system, user, assistant, tool
  std::string content;
};

struct chat_request {
  std::string model;  // empty: the server's (first) model
  std::vector<message> messages;
  bool add_generation_prompt = true;
  sampling_options sampling;
};

struct top_logprob {
  std::string token;  // the token's bytes (may be part of a UTF-8 character)
  float logprob = 0;
};

struct token_logprob {
  std::string token;
  float logprob = 0;
  std::vector<top_logprob> top;  // best first
};

struct chunk {
  int32_t sample = 0;
  std::string text;                     // the text delta
  std::vector<token_logprob> logprobs;  // when asked for
  std::string finish_reason;            // on a sample's last chunk: "stop", "length", "abort"
  std::vector<int32_t> token_ids;       // the generated ids behind this delta
};

struct result {
  std::vector<std::string> finish_reasons;  // per sample
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;            // all samples together
  std::vector<int32_t> prompt_token_ids;    // the prompt as the model saw it
};

struct model_info {
  std::string id;
  int64_t max_model_len = 0;
  std::string owned_by;
};

struct health_info {
  bool ready = false;  // at least one shard group is live
  uint32_t live_groups = 0;
};

// Gets each chunk as it arrives; returning false cancels the generation (the server aborts it and
// frees its KV cache), and the call then returns an error saying so.
using chunk_callback = std::function<bool(const chunk&)>;

class client {
 public:
  // Connects and authenticates (with no keys configured at the server, any key will do).
  [[nodiscard]] static expected<client> connect(const std::string& host, uint16_t port, const std::string& api_key);

  client(client&&) noexcept;
  client& operator=(client&&) noexcept;
  ~client();

  [[nodiscard]] expected<result> generate(const request& r, const chunk_callback& on_chunk);
  [[nodiscard]] expected<result> chat(const chat_request& r, const chunk_callback& on_chunk);
  [[nodiscard]] expected<std::vector<model_info>> models();
  [[nodiscard]] expected<health_info> health();

 private:
  struct impl;
  explicit client(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace troupe::client
