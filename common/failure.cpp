// failure_code names (see failure.hpp).
#include "common/failure.hpp"

namespace troupe {

const char* to_string(failure_code c) {
  switch (c) {
    case failure_code::none: return "none";
    case failure_code::invalid_request: return "invalid_request";
    case failure_code::context_length: return "context_length";
    case failure_code::not_found: return "not_found";
    case failure_code::unauthenticated: return "unauthenticated";
    case failure_code::overloaded: return "overloaded";
    case failure_code::unavailable: return "unavailable";
    case failure_code::timeout: return "timeout";
    case failure_code::internal: break;
  }
  return "internal";
}

}  // namespace troupe
