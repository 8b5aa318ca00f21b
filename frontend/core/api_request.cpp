// The client request's rules and their check (see api_request.hpp and request_rules.hpp).
#include "frontend/core/api_request.hpp"

#include <charconv>

#include "frontend/core/request_rules.hpp"

namespace troupe::frontend {
namespace rules {

[[noreturn]] void reject(std::string param, std::string message) {
  throw rejected{failure{failure_code::invalid_request, std::move(message), std::move(param)}};
}

std::string ticked(std::string_view name) {
  std::string out;
  out.reserve(name.size() + 2);
  out += '\'';
  out += name;
  out += '\'';
  return out;
}

std::string show_double(double d) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, r.ptr);
}

std::string show_string(std::string_view s) {
  if (s.size() <= max_echoed_bytes) return "\"" + std::string(s) + "\"";
  size_t cut = max_echoed_bytes;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return "\"" + std::string(s.substr(0, cut)) + "...\"";
}

std::string integer_range(int64_t lo, int64_t hi) {
  if (hi == std::numeric_limits<int64_t>::max() && lo != std::numeric_limits<int64_t>::min())
    return " must be >= " + std::to_string(lo);
  return " must be between " + std::to_string(lo) + " and " + std::to_string(hi);
}

void check_integer(int64_t value, const std::string& name, int64_t lo, int64_t hi) {
  if (value < lo || value > hi) reject(name, ticked(name) + integer_range(lo, hi) + ", got " + std::to_string(value));
}

bool in_range(const float_rule& rule, double x) { return (rule.lo_open ? x > rule.lo : x >= rule.lo) && x <= rule.hi; }

[[noreturn]] void reject_float(const float_rule& rule, const std::string& shown) {
  std::string words = rule.words ? rule.words : "";
  if (words.empty()) {
    words = rule.lo_open ? "greater than " + show_double(rule.lo) + " and at most " + show_double(rule.hi)
                         : "between " + show_double(rule.lo) + " and " + show_double(rule.hi);
  }
  reject(rule.name, ticked(rule.name) + " must be " + words + ", got " + shown);
}

void check_float(float f, const float_rule& rule) {
  if (!in_range(rule, f)) reject_float(rule, show_double(f));
}

void check_role(std::string_view role, const std::string& at) {
  if (role != "system" && role != "developer" && role != "user" && role != "assistant" && role != "tool") {
    reject(at + ".role", ticked(at + ".role") + " must be one of system, developer, user, assistant, tool; got " +
                             show_string(role));
  }
}

// The "got" value is the struct's, so a JSON 7.0 shows as "7" here.
void check_request(const api_request& r) {
  if (r.model.empty()) reject("model", "'model' must not be empty");
  if (r.endpoint == api_endpoint::completions) {
    if (!r.prompt_text && !r.prompt_tokens) reject("prompt", "'prompt' is required");
    if (r.prompt_text && r.prompt_tokens) reject("prompt", "'prompt' must be either text or token ids, not both");
    if ((r.prompt_text && r.prompt_text->empty()) || (r.prompt_tokens && r.prompt_tokens->empty()))
      reject("prompt", "'prompt' must not be empty");
    if (r.prompt_tokens) {
      for (size_t i = 0; i < r.prompt_tokens->size(); ++i)
        if ((*r.prompt_tokens)[i] < 0) check_integer((*r.prompt_tokens)[i], "prompt[" + std::to_string(i) + "]", 0, std::numeric_limits<int32_t>::max());
    }
  } else {
    if (r.messages.empty()) reject("messages", "'messages' must not be empty");
    for (size_t i = 0; i < r.messages.size(); ++i) check_role(r.messages[i].role, "messages[" + std::to_string(i) + "]");
  }
  if (r.max_tokens) check_integer(*r.max_tokens, "max_tokens", 1, std::numeric_limits<int32_t>::max());
  const auto& s = r.sampling;
  check_float(s.temperature, temperature_rule);
  check_float(s.top_p, top_p_rule);
  if (s.top_k < 0) reject("top_k", std::string(top_k_words) + std::to_string(s.top_k));
  check_float(s.min_p, min_p_rule);
  check_float(s.presence_penalty, presence_rule);
  check_float(s.frequency_penalty, frequency_rule);
  check_float(s.repetition_penalty, repetition_rule);
  if (s.logprobs != -1) {
    check_integer(s.logprobs, r.endpoint == api_endpoint::completions ? "logprobs" : "top_logprobs", 0, max_logprobs);
  }
  check_integer(r.n, "n", 1, max_n);
  if (r.stop.size() > max_stop_strings) {
    reject("stop", "'stop' may hold at most " + std::to_string(max_stop_strings) + " strings, got " +
                       std::to_string(r.stop.size()));
  }
  for (size_t i = 0; i < r.stop.size(); ++i) {
    const std::string name = "stop[" + std::to_string(i) + "]";
    if (r.stop[i].empty()) reject(name, ticked(name) + " must not be empty");
  }
  for (size_t i = 0; i < r.stop_token_ids.size(); ++i)
    check_integer(r.stop_token_ids[i], "stop_token_ids[" + std::to_string(i) + "]", 0, std::numeric_limits<int32_t>::max());
  if (auto ok = troupe::validate(s); !ok) reject("", ok.message());
}

}  // namespace rules

std::optional<failure> validate_api_request(const api_request& r) {
  try {
    rules::check_request(r);
  } catch (rules::rejected& e) {
    return std::move(e.error);
  }
  return std::nullopt;
}

}  // namespace troupe::frontend
