// Why a request failed, in the cluster's own terms: a small code that each front end maps to its
// protocol (HTTP statuses in frontend/http, kj exception types in frontend/rpc), and a message for
// the client that names what was wrong.
#pragma once

#include <caf/meta/type_name.hpp>
#include <cstdint>
#include <string>

namespace troupe {

enum class failure_code : int8_t {
  none = 0,             // no failure
  invalid_request = 1,  // the request itself is wrong (a parameter, a token id): do not retry it as is
  context_length = 2,   // prompt + max_tokens do not fit the model's context or the KV cache
  not_found = 3,        // no such model (or endpoint)
  unauthenticated = 4,  // no or a wrong key
  overloaded = 5,       // the cluster is full now: retry later
  unavailable = 6,      // nothing can serve it now (no live shard group): retry later
  internal = 7,         // a fault in the cluster (a shard group died mid-stream, a corrupt entry)
  timeout = 8,          // the request did not end within its deadline (--request-timeout)
};

// "invalid_request", "context_length", ...; a value from the wire outside the list reads "internal".
[[nodiscard]] const char* to_string(failure_code c);

struct failure {
  failure_code code = failure_code::none;
  std::string message;  // one line for the client: what was wrong, with the allowed range or type
  std::string param;    // the offending request field as a path ("messages[2].role"); empty: none
  int32_t retry_after_s = 0;  // overloaded / unavailable: when to try again (HTTP Retry-After); 0: no hint

  friend bool operator==(const failure&, const failure&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, failure& x) {
  return f(caf::meta::type_name("failure"), x.code, x.message, x.param, x.retry_after_s);
}

[[nodiscard]] inline bool failed(const failure& f) { return f.code != failure_code::none; }

}  // namespace troupe
