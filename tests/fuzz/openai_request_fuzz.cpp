// libFuzzer target for the OpenAI request parser and response writers: any body must parse into a
// request that passes the sampler's checks, or fail with a 400 whose error JSON is valid; whatever
// bytes the strings hold (the raw input included), the response writers must emit valid JSON.
#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "frontend/http/openai_request.hpp"
#include "frontend/http/openai_response.hpp"

using namespace troupe::frontend;
using namespace troupe::frontend::http;

namespace {

void require_json(const std::string& json) {
  static simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json).get(doc) != simdjson::SUCCESS) __builtin_trap();
}

void check_request(const api_request& r, std::string_view raw) {
  if (r.model.empty() || r.n < 1 || r.n > 16 || r.stop.size() > 16) __builtin_trap();
  if (!troupe::validate(r.sampling)) __builtin_trap();
  if (r.max_tokens && *r.max_tokens < 1) __builtin_trap();
  for (const auto& s : r.stop) {
    if (s.empty()) __builtin_trap();
  }
  if (r.endpoint == api_endpoint::completions) {
    if (r.prompt_text.has_value() == r.prompt_tokens.has_value()) __builtin_trap();  // exactly one form
    if (r.prompt_text && r.prompt_text->empty()) __builtin_trap();
    if (r.prompt_tokens && r.prompt_tokens->empty()) __builtin_trap();
  } else if (r.messages.empty()) {
    __builtin_trap();
  }

  // The writers on what the request carried, and on the raw bytes as model output.
  response_meta meta{"cmpl-x", 1, r.model, r.endpoint, true};
  choice_delta c;
  c.text = r.prompt_text ? *r.prompt_text : (r.messages.empty() ? std::string() : r.messages[0].content);
  c.logprobs.push_back({std::string(raw.substr(0, 64)), -1.0f, {{std::string(raw.substr(0, 3)), -2.0f}, {"x", -3.0f}}});
  c.finish_reason = r.stop.empty() ? std::string("stop") : r.stop[0];
  require_json(response_json(meta, {&c, 1}, {1, 1}));
  require_json(chunk_json(meta, c, true));
  require_json(chunk_json(meta, c, false));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  for (auto endpoint : {api_endpoint::completions, api_endpoint::chat_completions}) {
    auto result = parse_api_request(endpoint, body);
    if (auto* e = std::get_if<api_error>(&result)) {
      if (e->status != 400 || e->message.empty()) __builtin_trap();
      require_json(error_json(*e));
    } else {
      const auto& r = std::get<api_request>(result);
      if (r.endpoint != endpoint) __builtin_trap();
      check_request(r, body);
    }
  }
  return 0;
}
