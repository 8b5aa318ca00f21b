// The OpenAI-compatible request bodies (/v1/completions, /v1/chat/completions): parsed and checked
// field by field into one api_request, or an api_error rendered as OpenAI's error JSON (HTTP 400).
#include "frontend/http/openai_request.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <simdjson.h>

#include "frontend/core/request_rules.hpp"
#include "frontend/http/openai_json.hpp"

namespace troupe::frontend::http {
namespace {

using namespace rules;

namespace dom = simdjson::dom;

std::string_view type_name(dom::element v) {
  switch (v.type()) {
    case dom::element_type::ARRAY: return "array";
    case dom::element_type::OBJECT: return "object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE: return "number";
    case dom::element_type::STRING: return "string";
    case dom::element_type::BOOL: return "boolean";
    case dom::element_type::NULL_VALUE: return "null";
  }
  return "value";
}

// Unchecked reads, each after a type check: the error-code API, so that simdjson never throws.
int64_t as_int64(dom::element v) { return v.get_int64().value_unsafe(); }
uint64_t as_uint64(dom::element v) { return v.get_uint64().value_unsafe(); }
double as_double(dom::element v) { return v.get_double().value_unsafe(); }
std::string_view as_string(dom::element v) { return v.get_string().value_unsafe(); }
dom::array as_array(dom::element v) { return v.get_array().value_unsafe(); }
dom::object as_object(dom::element v) { return v.get_object().value_unsafe(); }

// A JSON value for "got ..." in a message: numbers as written, strings quoted, others by type.
std::string show(dom::element v) {
  switch (v.type()) {
    case dom::element_type::INT64: return std::to_string(as_int64(v));
    case dom::element_type::UINT64: return std::to_string(as_uint64(v));
    case dom::element_type::DOUBLE: {
      // A JSON 3.0 is not an integer here: show it as one that is not ("3.0", not "3").
      std::string text = show_double(as_double(v));
      if (text.find_first_of(".e") == std::string::npos) text += ".0";
      return text;
    }
    case dom::element_type::STRING: return show_string(as_string(v));
    default: return std::string(type_name(v));
  }
}

// The field `key` of `obj`; JSON null reads as absent, as OpenAI's optional fields do.
std::optional<dom::element> field(dom::object obj, std::string_view key) {
  dom::element v;
  if (obj.at_key(key).get(v) != simdjson::SUCCESS) return std::nullopt;
  if (v.is_null()) return std::nullopt;
  return v;
}

std::string_view get_string(dom::element v, const std::string& name) {
  if (!v.is_string()) reject(name, ticked(name) + " must be a string, got " + std::string(type_name(v)));
  return as_string(v);
}

bool get_bool(dom::element v, const std::string& name) {
  if (!v.is_bool()) reject(name, ticked(name) + " must be a boolean, got " + std::string(type_name(v)));
  return v.get_bool().value_unsafe();
}

dom::array get_array(dom::element v, const std::string& name) {
  if (!v.is_array()) reject(name, ticked(name) + " must be an array, got " + std::string(type_name(v)));
  return as_array(v);
}

dom::object get_object(dom::element v, const std::string& name) {
  if (!v.is_object()) reject(name, ticked(name) + " must be an object, got " + std::string(type_name(v)));
  return as_object(v);
}

double get_number(dom::element v, const std::string& name) {
  if (!v.is_number()) reject(name, ticked(name) + " must be a number, got " + std::string(type_name(v)));
  switch (v.type()) {
    case dom::element_type::INT64: return static_cast<double>(as_int64(v));
    case dom::element_type::UINT64: return static_cast<double>(as_uint64(v));
    default: return as_double(v);
  }
}

// Strict: 3.0 and 1e2 are JSON numbers with a fraction or exponent, so not integers here. None: an
// integer above INT64_MAX (simdjson's UINT64), out of every range this file accepts.
std::optional<int64_t> integer_value(dom::element v, const std::string& name) {
  if (!v.is_number()) reject(name, ticked(name) + " must be an integer, got " + std::string(type_name(v)));
  if (v.type() == dom::element_type::DOUBLE) reject(name, ticked(name) + " must be an integer, got " + show(v));
  if (v.type() == dom::element_type::UINT64) return std::nullopt;
  return as_int64(v);
}

int64_t get_integer(dom::element v, const std::string& name, int64_t lo, int64_t hi) {
  const auto value = integer_value(v, name);
  if (!value || *value < lo || *value > hi) reject(name, ticked(name) + integer_range(lo, hi) + ", got " + show(v));
  return *value;
}

int32_t get_int32(dom::element v, const std::string& name, int64_t lo,
                  int64_t hi = std::numeric_limits<int32_t>::max()) {
  return static_cast<int32_t>(get_integer(v, name, lo, hi));
}

// A number in the rule's range, checked before and after narrowing to float: a double beyond
// float's range must not be cast (undefined), and a tiny positive double may round to 0.
float get_float(dom::element v, const float_rule& rule) {
  const double d = get_number(v, rule.name);
  const float f = in_range(rule, d) ? static_cast<float>(d) : 0.0f;
  if (!in_range(rule, d) || !in_range(rule, f)) reject_float(rule, show(v));
  return f;
}

std::vector<int32_t> get_token_ids(dom::element v, const std::string& name) {
  std::vector<int32_t> ids;
  const dom::array arr = get_array(v, name);
  ids.reserve(arr.size());
  size_t i = 0;
  for (dom::element id : arr) {
    // Prompts run to many thousands of ids: name the element only when it is wrong.
    if (id.type() == dom::element_type::INT64 && as_int64(id) >= 0 &&
        as_int64(id) <= std::numeric_limits<int32_t>::max()) {
      ids.push_back(static_cast<int32_t>(as_int64(id)));
    } else {
      get_int32(id, name + "[" + std::to_string(i) + "]", 0);  // rejects, naming it
    }
    ++i;
  }
  return ids;
}

void parse_prompt(dom::element v, api_request& r) {
  const std::string name = "prompt";
  const std::string kinds = " must be a string, an array of token ids, or an array of one of these";
  if (v.is_string()) {
    if (as_string(v).empty()) reject(name, "'prompt' must not be empty");
    r.prompt_text = std::string(as_string(v));
    return;
  }
  if (!v.is_array()) reject(name, ticked(name) + kinds + ", got " + std::string(type_name(v)));
  const dom::array arr = as_array(v);
  if (arr.size() == 0) reject(name, "'prompt' must not be empty");
  const dom::element first = arr.at(0).value_unsafe();
  if (first.is_number()) {
    r.prompt_tokens = get_token_ids(v, name);
    return;
  }
  if (!first.is_string() && !first.is_array()) {
    reject("prompt[0]", "'prompt[0]'" + kinds + ", got " + std::string(type_name(first)));
  }
  if (arr.size() > 1) reject(name, "batched prompts are not supported; send one prompt per request");
  if (first.is_string()) {
    if (as_string(first).empty()) reject(name, "'prompt' must not be empty");
    r.prompt_text = std::string(as_string(first));
    return;
  }
  auto ids = get_token_ids(first, "prompt[0]");
  if (ids.empty()) reject(name, "'prompt' must not be empty");
  r.prompt_tokens = std::move(ids);
}

std::string message_content(dom::element msg_value, const std::string& at, const std::string& role) {
  const dom::object msg = as_object(msg_value);
  const std::string name = at + ".content";
  const auto content = field(msg, "content");
  if (!content) {
    // OpenAI lets an assistant turn carry tool calls instead of text; its content is then null.
    if (role == "assistant") return {};
    reject(name, ticked(name) + " must be a string or an array of text parts, got null");
  }
  if (content->is_string()) return std::string(as_string(*content));
  if (!content->is_array()) {
    reject(name, ticked(name) + " must be a string or an array of text parts, got " +
                     std::string(type_name(*content)));
  }
  std::string joined;
  size_t j = 0;
  for (dom::element part_value : as_array(*content)) {
    const std::string part_name = name + "[" + std::to_string(j) + "]";
    const dom::object part = get_object(part_value, part_name);
    const auto type = field(part, "type");
    if (!type) reject(part_name + ".type", ticked(part_name + ".type") + " is required");
    const std::string_view type_text = get_string(*type, part_name + ".type");
    if (type_text != "text") {
      reject(part_name + ".type", ticked(part_name + ".type") + " must be \"text\", got " + show_string(type_text) +
                                      " (only text content is supported)");
    }
    const auto text = field(part, "text");
    if (!text) reject(part_name + ".text", ticked(part_name + ".text") + " is required");
    if (j > 0) joined += '\n';  // vLLM joins text parts with a newline
    joined += get_string(*text, part_name + ".text");
    ++j;
  }
  return joined;
}

void parse_messages(dom::element v, api_request& r) {
  const dom::array arr = get_array(v, "messages");
  if (arr.size() == 0) reject("messages", "'messages' must not be empty");
  r.messages.reserve(arr.size());
  size_t i = 0;
  for (dom::element msg_value : arr) {
    const std::string at = "messages[" + std::to_string(i) + "]";
    const dom::object msg = get_object(msg_value, at);
    const auto role_value = field(msg, "role");
    if (!role_value) reject(at + ".role", ticked(at + ".role") + " is required");
    std::string role(get_string(*role_value, at + ".role"));
    check_role(role, at);
    if (role == "developer") role = "system";  // OpenAI's newer name; chat templates know "system"
    std::string content = message_content(msg_value, at, role);
    r.messages.push_back({std::move(role), std::move(content)});
    ++i;
  }
}

void parse_stop(dom::element v, api_request& r) {
  if (v.is_string()) {
    if (as_string(v).empty()) reject("stop", "'stop' must not be an empty string");
    r.stop.emplace_back(as_string(v));
    return;
  }
  if (!v.is_array()) reject("stop", "'stop' must be a string or an array of strings, got " + std::string(type_name(v)));
  const dom::array arr = as_array(v);
  if (arr.size() > max_stop_strings) {
    reject("stop", "'stop' may hold at most " + std::to_string(max_stop_strings) + " strings, got " +
                       std::to_string(arr.size()));
  }
  size_t i = 0;
  for (dom::element s : arr) {
    const std::string name = "stop[" + std::to_string(i) + "]";
    const std::string_view text = get_string(s, name);
    if (text.empty()) reject(name, ticked(name) + " must not be empty");
    r.stop.emplace_back(text);
    ++i;
  }
}

// Sampling fields shared by both endpoints (logprobs differ and are read by the caller).
void parse_sampling(dom::object body, api_request& r) {
  auto& s = r.sampling;
  if (auto v = field(body, "temperature")) s.temperature = get_float(*v, temperature_rule);
  if (auto v = field(body, "top_p")) s.top_p = get_float(*v, top_p_rule);
  if (auto v = field(body, "top_k")) {
    const auto k = integer_value(*v, "top_k");
    if (!k || *k < -1 || *k > std::numeric_limits<int32_t>::max()) {
      reject("top_k", std::string(top_k_words) + show(*v));
    }
    s.top_k = *k == -1 ? 0 : static_cast<int32_t>(*k);
  }
  if (auto v = field(body, "min_p")) s.min_p = get_float(*v, min_p_rule);
  if (auto v = field(body, "presence_penalty")) s.presence_penalty = get_float(*v, presence_rule);
  if (auto v = field(body, "frequency_penalty")) s.frequency_penalty = get_float(*v, frequency_rule);
  if (auto v = field(body, "repetition_penalty")) s.repetition_penalty = get_float(*v, repetition_rule);
  if (auto v = field(body, "seed")) {
    const int64_t seed =
        get_integer(*v, "seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
    s.seed = static_cast<uint64_t>(seed);  // two's complement: -1 and 2^64-1 draw the same
  }
}

void parse_logprobs(dom::object body, api_request& r) {
  if (r.endpoint == api_endpoint::completions) {
    if (auto v = field(body, "logprobs")) r.sampling.logprobs = get_int32(*v, "logprobs", 0, max_logprobs);
    return;
  }
  bool want = false;
  if (auto v = field(body, "logprobs")) want = get_bool(*v, "logprobs");
  std::optional<int32_t> top;
  if (auto v = field(body, "top_logprobs")) top = get_int32(*v, "top_logprobs", 0, max_logprobs);
  if (top && !want) reject("top_logprobs", "'top_logprobs' requires 'logprobs' to be true");
  if (want) r.sampling.logprobs = top.value_or(0);
}

void parse_body(dom::object body, api_request& r) {
  const auto model = field(body, "model");
  if (!model) reject("model", "'model' is required");
  r.model = std::string(get_string(*model, "model"));
  if (r.model.empty()) reject("model", "'model' must not be empty");

  if (r.endpoint == api_endpoint::completions) {
    const auto prompt = field(body, "prompt");
    if (!prompt) reject("prompt", "'prompt' is required");
    parse_prompt(*prompt, r);
  } else {
    const auto messages = field(body, "messages");
    if (!messages) reject("messages", "'messages' is required");
    parse_messages(*messages, r);
    if (auto v = field(body, "add_generation_prompt")) r.add_generation_prompt = get_bool(*v, "add_generation_prompt");
  }

  if (auto v = field(body, "max_tokens")) r.max_tokens = get_int32(*v, "max_tokens", 1);
  if (r.endpoint == api_endpoint::chat_completions) {
    if (auto v = field(body, "max_completion_tokens")) r.max_tokens = get_int32(*v, "max_completion_tokens", 1);
  }
  parse_sampling(body, r);
  parse_logprobs(body, r);
  if (auto v = field(body, "n")) r.n = get_int32(*v, "n", 1, max_n);
  if (auto v = field(body, "stop")) parse_stop(*v, r);
  if (auto v = field(body, "stop_token_ids")) r.stop_token_ids = get_token_ids(*v, "stop_token_ids");
  if (auto v = field(body, "ignore_eos")) r.ignore_eos = get_bool(*v, "ignore_eos");
  if (auto v = field(body, "skip_special_tokens")) r.skip_special_tokens = get_bool(*v, "skip_special_tokens");
  if (auto v = field(body, "stream")) r.stream = get_bool(*v, "stream");
  if (auto v = field(body, "stream_options")) {
    if (!r.stream) reject("stream_options", "stream_options is only allowed when stream is true");
    const dom::object options = get_object(*v, "stream_options");
    if (auto u = field(options, "include_usage")) r.include_usage = get_bool(*u, "stream_options.include_usage");
  }
  if (auto v = field(body, "user")) r.user = std::string(get_string(*v, "user"));
  if (auto v = field(body, "cache")) r.cache = get_bool(*v, "cache");

  if (auto ok = validate(r.sampling); !ok) reject("", ok.message());
}

}  // namespace

std::variant<api_request, api_error> parse_api_request(api_endpoint endpoint, std::string_view body) {
  // A parser per call: no state shared between threads, and a large body's buffers do not outlive
  // its request. The body is copied into the parser's padded buffer (realloc_if_needed).
  dom::parser parser;
  const auto bad_json = [](std::string message) {
    api_error e;
    e.message = std::move(message);
    return e;
  };
  if (auto err = parser.allocate(std::max<size_t>(body.size(), 64), max_request_depth); err) {
    return bad_json(std::string("malformed JSON: ") + simdjson::error_message(err));
  }
  dom::element root;
  if (auto err = parser.parse(body.data(), body.size(), true).get(root); err) {
    if (err == simdjson::DEPTH_ERROR) {
      return bad_json("malformed JSON: nested deeper than " + std::to_string(max_request_depth) + " levels");
    }
    return bad_json(std::string("malformed JSON: ") + simdjson::error_message(err));
  }
  if (!root.is_object()) return bad_json("request body must be a JSON object, got " + std::string(type_name(root)));
  api_request r;
  r.endpoint = endpoint;
  try {
    parse_body(as_object(root), r);
    check_request(r);  // what the JSON checks let through, validate_api_request lets through too
  } catch (rules::rejected& e) {
    return to_api_error(e.error);
  }
  return r;
}

api_error to_api_error(const failure& f) {
  api_error e{400, f.message, "invalid_request_error", f.param, {}, f.retry_after_s};
  switch (f.code) {
    case failure_code::invalid_request: break;
    case failure_code::context_length: e.code = "context_length_exceeded"; break;
    case failure_code::not_found:
      e.status = 404;
      if (f.param == "model") e.code = "model_not_found";
      break;
    case failure_code::unauthenticated: e.status = 401; break;
    case failure_code::overloaded: e.status = 429; e.type = "server_error"; e.code = "overloaded"; break;
    case failure_code::unavailable: e.status = 503; e.type = "server_error"; break;
    case failure_code::timeout: e.status = 504; e.type = "server_error"; e.code = "timeout"; break;
    default: e.status = 500; e.type = "server_error"; break;  // internal, or none where a failure was due
  }
  return e;
}

std::string error_json(const api_error& e) {
  std::string out = "{\"error\":{\"message\":";
  append_json_text(out, e.message);
  out += ",\"type\":";
  append_json_text(out, e.type);
  out += ",\"param\":";
  if (e.param.empty()) {
    out += "null";
  } else {
    append_json_text(out, e.param);
  }
  out += ",\"code\":";
  if (e.code.empty()) {
    out += "null";
  } else {
    append_json_text(out, e.code);
  }
  out += "}}";
  return out;
}

}  // namespace troupe::frontend::http