// The OpenAI-compatible response bodies: completions and chat completions (whole and streamed as
// server-sent events), the usage chunk and /v1/models, written by hand in OpenAI's exact shapes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "frontend/core/api_request.hpp"
#include "frontend/core/text_delta.hpp"

namespace troupe::frontend::http {

struct response_meta {
  std::string id;  // make_request_id()
  int64_t created = 0;  // Unix seconds
  std::string model;
  api_endpoint endpoint = api_endpoint::completions;
  bool logprobs = false;  // write the choices' logprobs objects (else "logprobs": null)
};

// Every writer returns valid JSON whatever bytes the strings hold; thread-safe (pure functions).

// The non-streamed body: "text_completion" or "chat.completion", with "usage".
[[nodiscard]] std::string response_json(const response_meta& meta, std::span<const choice_delta> choices,
                                        const usage_counts& usage);

// One streamed chunk ("text_completion" or "chat.completion.chunk"), without "usage". For chat,
// `first_chat_chunk` adds "role":"assistant" to the delta and always writes "content" (OpenAI's first
// chunk per choice is {"role":"assistant","content":""}); later deltas write "content" only when
// `text` is not empty, so the closing chunk with a finish_reason carries "delta":{}.
[[nodiscard]] std::string chunk_json(const response_meta& meta, const choice_delta& delta, bool first_chat_chunk);

// The final chunk that stream_options.include_usage asks for: "choices":[] and "usage".
[[nodiscard]] std::string usage_chunk_json(const response_meta& meta, const usage_counts& usage);

// "data: <json>\n\n"
[[nodiscard]] std::string sse_data(std::string_view json);
inline constexpr std::string_view sse_done = "data: [DONE]\n\n";

struct model_card {
  std::string id;
  int64_t created = 0;
  std::string owned_by = "troupe";
  int64_t max_model_len = 0;
};

// {"object":"list","data":[{"id","object":"model","created","owned_by","max_model_len"}]}
[[nodiscard]] std::string models_json(std::span<const model_card> models);

// `prefix` ("cmpl-", "chatcmpl-") + 24 random hex characters. Thread-safe: one generator per
// thread, seeded from std::random_device.
[[nodiscard]] std::string make_request_id(std::string_view prefix);

}  // namespace troupe::frontend::http
