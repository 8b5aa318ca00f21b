// The Cap'n Proto API's requests (schema/troupe.capnp) turned into the api_request the HTTP API
// parses into, so that both APIs accept and refuse the same things; and api_error as a kj::Exception.
#pragma once

#include <kj/exception.h>

#include <variant>

#include "frontend/http/openai_request.hpp"
#include "schema/troupe.capnp.h"

namespace troupe::frontend::rpc {

// Copies every field out of the message (the caller may release it after) and checks it with
// validate_api_request; texts must be valid UTF-8 (JSON bodies are). A message that is malformed at
// the Cap'n Proto level throws kj::Exception (capnp's own bounds checks), which the RPC system
// returns to the caller. Thread-safe (pure).
[[nodiscard]] std::variant<api_request, failure> from_rpc(schema::GenerateRequest::Reader request);
[[nodiscard]] std::variant<api_request, failure> from_rpc(schema::ChatRequest::Reader request);

// How a failure reaches an RPC caller: OVERLOADED for overloaded and unavailable (no live shard
// group: retry later, the request itself was fine), FAILED for everything else. The description is
// the failure's message, which names the offending parameter.
[[nodiscard]] kj::Exception to_exception(const failure& e);

}  // namespace troupe::frontend::rpc
