// The OpenAI-compatible request bodies (/v1/completions, /v1/chat/completions): parsed and checked
// field by field into one api_request, or an api_error rendered as OpenAI's error JSON (HTTP 400).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/failure.hpp"
#include "engine/chat/chat_template.hpp"
#include "common/sampling_params.hpp"

namespace troupe::router {

enum class api_endpoint { completions, chat_completions };

// Rendered by error_json(). `param` names the offending field as a path: "temperature",
// "messages[2].role", "messages[0].content[1].type", "stop[3]", "stream_options.include_usage".
struct api_error {
  int status = 400;                               // HTTP status
  std::string message;                            // what was wrong, with the allowed range or type
  std::string type = "invalid_request_error";
  std::string param;                              // empty = null
  std::string code;                               // empty = null
};

struct api_request {
  api_endpoint endpoint = api_endpoint::completions;
  std::string model;
  std::optional<std::string> prompt_text;             // completions: "prompt": "text" or ["text"]
  std::optional<std::vector<int32_t>> prompt_tokens;  // completions: "prompt": [1,2,3] or [[1,2,3]]
  // Chat: "developer" arrives here as "system"; an array of text parts is joined with "\n" (as
  // vLLM does); an assistant's null or absent content is "".
  std::vector<engine::chat::chat_message> messages;
  bool add_generation_prompt = true;                  // chat, vLLM extension
  // max_tokens, or for chat max_completion_tokens (which wins when both are given). None: until
  // the context ends; OpenAI's legacy completions default of 16 is not applied here.
  std::optional<int32_t> max_tokens;
  // top_k -1 arrives as 0 (off); seed is the int64 cast to uint64; logprobs -1 = none, else the
  // number of alternatives (completions "logprobs"; chat "top_logprobs" when "logprobs" is true).
  sampling_params sampling;
  int32_t n = 1;                                      // 1..16
  std::vector<std::string> stop;                      // at most 16, none empty
  std::vector<int32_t> stop_token_ids;                // vLLM extension; not checked against the vocab
  bool ignore_eos = false;                            // vLLM extension
  bool skip_special_tokens = true;                    // vLLM extension
  bool stream = false;
  bool include_usage = false;                         // stream_options.include_usage
  std::string user;
  bool cache = true;                                  // "cache": false bypasses the response cache
};

// Nesting deeper than this is refused before any field is read.
inline constexpr size_t max_request_depth = 64;

// Never throws, never crashes, whatever the bytes: a malformed, over-deep or wrongly typed body is
// an api_error naming the field. Token ids are only checked to be non-negative int32: the vocabulary
// size is the caller's to check. Thread-safe (no shared state).
[[nodiscard]] std::variant<api_request, api_error> parse_api_request(api_endpoint endpoint, std::string_view body);

// The checks of parse_api_request on a request built another way (the Cap'n Proto API), with the
// same rules and messages: none when it is acceptable. parse_api_request's results always pass.
// Chat roles are checked as given ("developer" is accepted; the caller maps it to "system").
// The failure is always invalid_request, with `param` naming the field.
[[nodiscard]] std::optional<failure> validate_api_request(const api_request& r);

// A cluster failure as the HTTP API reports it: invalid_request and context_length 400
// (context_length with OpenAI's code "context_length_exceeded"), not_found 404 ("model_not_found"
// for the model), unauthenticated 401, overloaded and unavailable 503, internal 500.
[[nodiscard]] api_error to_api_error(const failure& f);

// {"error":{"message":...,"type":...,"param":...|null,"code":...|null}}; always valid JSON.
[[nodiscard]] std::string error_json(const api_error& e);

}  // namespace troupe::router
