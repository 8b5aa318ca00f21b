// The rules a client request must follow, shared by the front ends that read one (the OpenAI JSON
// parser in frontend/http, the Cap'n Proto reader in frontend/rpc), so both accept and refuse the
// same things in the same words. A violation is thrown as `rejected` from deep inside a check and
// caught once at the edge (parse_api_request, validate_api_request): it never leaves the front end.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "common/failure.hpp"
#include "frontend/core/api_request.hpp"

namespace troupe::frontend::rules {

inline constexpr int32_t max_n = 16;
inline constexpr size_t max_stop_strings = 16;
inline constexpr int64_t max_logprobs = 20;
inline constexpr size_t max_echoed_bytes = 40;  // of a client's string quoted back in an error
inline constexpr const char* top_k_words = "'top_k' must be -1 or 0 (off) or a positive integer up to 2147483647, got ";

// A violation: always failure_code::invalid_request, with the offending field in `param`.
struct rejected {
  failure error;
};

[[noreturn]] void reject(std::string param, std::string message);

// 'name', quoted for a message.
[[nodiscard]] std::string ticked(std::string_view name);
// A double as the shortest text that reads back the same.
[[nodiscard]] std::string show_double(double d);
// A client's string for an error message: quoted, cut at a character boundary when long. `s` must
// be valid UTF-8 (JSON bodies are validated; the RPC reader checks its texts).
[[nodiscard]] std::string show_string(std::string_view s);
// The words of an integer range in a message: " must be >= 1", " must be between 0 and 20".
[[nodiscard]] std::string integer_range(int64_t lo, int64_t hi);
// Rejects a struct field's integer out of [lo, hi], in the words the JSON parser uses.
void check_integer(int64_t value, const std::string& name, int64_t lo, int64_t hi);

// The float parameters' ranges. `words` states the bounds in the message when the numbers alone
// would read badly.
struct float_rule {
  const char* name;
  double lo, hi;
  bool lo_open;
  const char* words;
};
inline constexpr float_rule temperature_rule{"temperature", 0.0, 2.0, false, nullptr};
inline constexpr float_rule top_p_rule{"top_p", 0.0, 1.0, true, nullptr};
inline constexpr float_rule min_p_rule{"min_p", 0.0, 1.0, false, nullptr};
inline constexpr float_rule presence_rule{"presence_penalty", -2.0, 2.0, false, nullptr};
inline constexpr float_rule frequency_rule{"frequency_penalty", -2.0, 2.0, false, nullptr};
inline constexpr float_rule repetition_rule{"repetition_penalty", 0.0, double(std::numeric_limits<float>::max()),
                                            true, "greater than 0 (and at most 3.4e38)"};

[[nodiscard]] bool in_range(const float_rule& rule, double x);
[[noreturn]] void reject_float(const float_rule& rule, const std::string& shown);
// A struct's float: NaN is out of every range.
void check_float(float f, const float_rule& rule);
// A chat message's role: system, developer, user, assistant or tool; `at` is "messages[i]".
void check_role(std::string_view role, const std::string& at);

// Every rule a request built field by field can break (the JSON parser checks what it parsed with
// this too). Throws rejected.
void check_request(const api_request& r);

}  // namespace troupe::frontend::rules
