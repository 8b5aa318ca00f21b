// JSON-writing helpers shared by the OpenAI request errors and response writers: text that may not
// be valid UTF-8 (model output cut mid-character) and numbers that must stay valid JSON.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace troupe::frontend::http {

// Appends `s` as a JSON string; each invalid or truncated UTF-8 sequence becomes U+FFFD (Unicode's
// "maximal subpart" rule), so that the output is always valid JSON whatever bytes come in.
void append_json_text(std::string& out, std::string_view s);

// Appends a float so that it round-trips (%.9g). JSON has no NaN or infinity: a non-finite value
// or one below -9999 is written as -9999.0, the value vLLM uses for a logprob of -inf.
void append_json_logprob(std::string& out, float value);

void append_json_int(std::string& out, int64_t value);

}  // namespace troupe::frontend::http
