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
#include "frontend/core/api_request.hpp"

namespace troupe::frontend::http {

// Rendered by error_json(). `param` names the offending field as a path: "temperature",
// "messages[2].role", "messages[0].content[1].type", "stop[3]", "stream_options.include_usage".
struct api_error {
  int status = 400;                               // HTTP status
  std::string message;                            // what was wrong, with the allowed range or type
  std::string type = "invalid_request_error";
  std::string param;                              // empty = null
  std::string code;                               // empty = null
  int32_t retry_after_s = 0;                      // > 0: sent as the Retry-After header
};

// Nesting deeper than this is refused before any field is read.
inline constexpr size_t max_request_depth = 64;

// Never throws, never crashes, whatever the bytes: a malformed, over-deep or wrongly typed body is
// an api_error naming the field. Token ids are only checked to be non-negative int32: the vocabulary
// size is the caller's to check. Thread-safe (no shared state).
[[nodiscard]] std::variant<api_request, api_error> parse_api_request(api_endpoint endpoint, std::string_view body);

// A cluster failure as the HTTP API reports it: invalid_request and context_length 400
// (context_length with OpenAI's code "context_length_exceeded"), not_found 404 ("model_not_found"
// for the model), unauthenticated 401, overloaded and unavailable 503, internal 500.
[[nodiscard]] api_error to_api_error(const failure& f);

// {"error":{"message":...,"type":...,"param":...|null,"code":...|null}}; always valid JSON.
[[nodiscard]] std::string error_json(const api_error& e);

}  // namespace troupe::frontend::http
