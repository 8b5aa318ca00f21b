// A client's request as the front ends read it, before it meets the model: the text prompt, token
// ids or chat messages and the request's parameters, with OpenAI's names and rules. The HTTP API
// parses its JSON bodies into it (frontend/http), the Cap'n Proto API its messages (frontend/rpc);
// model_frontend::prepare turns it into the cluster's request (common/request.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/failure.hpp"
#include "common/sampling_params.hpp"
#include "engine/chat/chat_template.hpp"

namespace troupe::frontend {

enum class api_endpoint { completions, chat_completions };

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

// The checks of the HTTP API's parser on a request built another way (the Cap'n Proto API), with
// the same rules and messages: none when it is acceptable; the parser's results always pass. Chat roles are checked as given ("developer" is accepted; the caller maps it to "system"). The failure is always invalid_request, with `param` naming the field.
[[nodiscard]] std::optional<failure> validate_api_request(const api_request& r);

}  // namespace troupe::frontend
