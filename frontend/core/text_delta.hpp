// What a request's session hands the servers after each step, in neutral terms: per sample, the new
// text with its token ids, logprobs and finish reason; and the usage. Each server renders these in
// its protocol (frontend/http as OpenAI JSON, frontend/rpc as Cap'n Proto chunks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace troupe::frontend {

struct top_alternative {
  std::string token;  // the token's bytes as decoded
  float logprob;
};

// `token` is the token's bytes as decoded, possibly part of a UTF-8 character: JSON strings get
// U+FFFD for such bytes, and chat's "bytes" arrays carry them exactly.
struct token_logprob_text {
  std::string token;
  float logprob;
  std::vector<top_alternative> top;  // best first; empty = none asked for
};

struct choice_delta {
  int32_t index = 0;
  std::string text;                          // stream: this delta; non-stream: the whole completion
  std::vector<token_logprob_text> logprobs;  // for the tokens of `text` when logprobs were asked for
  // Completions logprobs: the byte offset of `text` in the whole completion. "text_offset" entries
  // are byte offsets (the tokens' bytes add up to the text's; code points would not, with tokens that
  // split a character).
  size_t text_offset = 0;
  std::optional<std::string> finish_reason;  // "stop" | "length" | ...; none = null
  // The generated token ids behind `text` (the OpenAI JSON does not carry them; the RPC API does).
  std::vector<int32_t> token_ids;
};

struct usage_counts {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

}  // namespace troupe::frontend
