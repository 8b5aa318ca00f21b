// How a sample ended: the one finish vocabulary of the engine, the wire and the front ends.
#pragma once

#include <cstdint>
#include <string>

namespace troupe {

// `none` while a sample runs (a token chunk that does not end it). On the wire as its int8 value;
// a value from the wire outside this list reads as `error` (to_string), never as a valid finish.
enum class finish_reason : int8_t {
  none = -1,
  stop = 0,    // eos, a stop token id or a stop string
  length = 1,  // max_tokens or the context's end
  abort = 2,   // cancelled: the client left or an operator aborted it
  error = 3,   // failed; the chunk's failure says why
};

// "stop", "length", "abort", "error" (OpenAI's finish_reason strings for the first two); "none".
[[nodiscard]] constexpr const char* to_string(finish_reason f) {
  switch (f) {
    case finish_reason::none: return "none";
    case finish_reason::stop: return "stop";
    case finish_reason::length: return "length";
    case finish_reason::abort: return "abort";
    case finish_reason::error: break;
  }
  return "error";
}

// Ended normally: by a stop rule or the length limit.
[[nodiscard]] constexpr bool completed(finish_reason f) {
  return f == finish_reason::stop || f == finish_reason::length;
}

}  // namespace troupe
