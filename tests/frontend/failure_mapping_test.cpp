// A cluster failure reaches each client in its own protocol's terms, and only there: the HTTP API's
// status, OpenAI error type and code (frontend/http to_api_error), the Cap'n Proto API's kj
// exception type (frontend/rpc to_exception). The message and the offending parameter go through
// unchanged.
#include <gtest/gtest.h>

#include "frontend/http/openai_request.hpp"
#include "frontend/rpc/rpc_request.hpp"

namespace troupe::frontend {
namespace {

struct mapping {
  failure_code code;
  int status;
  const char* type;
  const char* openai_code;  // for param "model"
  kj::Exception::Type rpc;
};

TEST(failure_mapping, every_code_has_its_http_status_and_rpc_exception_type) {
  using kj_type = kj::Exception::Type;
  const mapping cases[] = {
      {failure_code::invalid_request, 400, "invalid_request_error", "", kj_type::FAILED},
      {failure_code::context_length, 400, "invalid_request_error", "context_length_exceeded", kj_type::FAILED},
      {failure_code::not_found, 404, "invalid_request_error", "model_not_found", kj_type::FAILED},
      {failure_code::unauthenticated, 401, "invalid_request_error", "", kj_type::FAILED},
      {failure_code::overloaded, 429, "server_error", "overloaded", kj_type::OVERLOADED},
      {failure_code::unavailable, 503, "server_error", "", kj_type::OVERLOADED},
      {failure_code::internal, 500, "server_error", "", kj_type::FAILED},
      {failure_code::timeout, 504, "server_error", "timeout", kj_type::FAILED},
      // A failure without a code (never sent on purpose; a corrupt chunk) is an internal error.
      {failure_code::none, 500, "server_error", "", kj_type::FAILED},
      // A code from the wire outside the enum is one too.
      {failure_code(42), 500, "server_error", "", kj_type::FAILED},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(to_string(c.code));
    const failure f{c.code, "what was wrong", "model"};
    const http::api_error e = http::to_api_error(f);
    EXPECT_EQ(e.status, c.status);
    EXPECT_EQ(e.type, c.type);
    EXPECT_EQ(e.code, c.openai_code);
    EXPECT_EQ(e.message, "what was wrong");
    EXPECT_EQ(e.param, "model");
    const kj::Exception x = rpc::to_exception(f);
    EXPECT_EQ(x.getType(), c.rpc);
    EXPECT_EQ(std::string(x.getDescription().cStr()), "what was wrong");
  }
}

TEST(failure_mapping, a_retry_hint_becomes_retry_after_and_the_rpc_texts_hint) {
  const failure f{failure_code::overloaded, "the server is at capacity", {}, 7};
  EXPECT_EQ(http::to_api_error(f).retry_after_s, 7);
  EXPECT_EQ(std::string(rpc::to_exception(f).getDescription().cStr()), "the server is at capacity (retry after 7 s)");
}

TEST(failure_mapping, the_error_body_is_openai_json_with_the_param) {
  const auto e = http::to_api_error({failure_code::context_length, "too long", "max_tokens"});
  EXPECT_EQ(http::error_json(e),
            "{\"error\":{\"message\":\"too long\",\"type\":\"invalid_request_error\",\"param\":\"max_tokens\","
            "\"code\":\"context_length_exceeded\"}}");
}

}  // namespace
}  // namespace troupe::frontend
