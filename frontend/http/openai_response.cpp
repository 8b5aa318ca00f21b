// The OpenAI-compatible response bodies: completions and chat completions (whole and streamed as
// server-sent events), the usage chunk and /v1/models, written by hand in OpenAI's exact shapes.
#include "frontend/http/openai_response.hpp"

#include <random>

#include "frontend/http/openai_json.hpp"

namespace troupe::frontend::http {
namespace {

bool is_chat(const response_meta& meta) { return meta.endpoint == api_endpoint::chat_completions; }

// "id", "object", "created", "model": the head every body and chunk starts with (opens the object).
void append_head(std::string& out, const response_meta& meta, std::string_view object) {
  out += "{\"id\":";
  append_json_text(out, meta.id);
  out += ",\"object\":";
  append_json_text(out, object);
  out += ",\"created\":";
  append_json_int(out, meta.created);
  out += ",\"model\":";
  append_json_text(out, meta.model);
}

void append_usage(std::string& out, const usage_counts& usage) {
  out += "\"usage\":{\"prompt_tokens\":";
  append_json_int(out, usage.prompt_tokens);
  out += ",\"completion_tokens\":";
  append_json_int(out, usage.completion_tokens);
  out += ",\"total_tokens\":";
  append_json_int(out, usage.prompt_tokens + usage.completion_tokens);
  out += '}';
}

void append_finish_reason(std::string& out, const std::optional<std::string>& reason) {
  out += "\"finish_reason\":";
  if (reason) {
    append_json_text(out, *reason);
  } else {
    out += "null";
  }
}

// Completions: parallel arrays, and per token a {text: logprob} object of the alternatives (null
// when none were asked for). Alternatives whose texts coincide (two partial characters both shown
// as U+FFFD, say) keep the first, best one: a JSON object should not repeat a key.
void append_completion_logprobs(std::string& out, const choice_delta& c) {
  out += "{\"tokens\":[";
  for (size_t i = 0; i < c.logprobs.size(); ++i) {
    if (i) out += ',';
    append_json_text(out, c.logprobs[i].token);
  }
  out += "],\"token_logprobs\":[";
  for (size_t i = 0; i < c.logprobs.size(); ++i) {
    if (i) out += ',';
    append_json_logprob(out, c.logprobs[i].logprob);
  }
  out += "],\"top_logprobs\":[";
  std::vector<std::string> keys;
  for (size_t i = 0; i < c.logprobs.size(); ++i) {
    if (i) out += ',';
    const auto& top = c.logprobs[i].top;
    if (top.empty()) {
      out += "null";
      continue;
    }
    keys.clear();
    out += '{';
    for (const auto& alt : top) {
      std::string key;
      append_json_text(key, alt.token);
      bool seen = false;
      for (const auto& k : keys) seen = seen || k == key;
      if (seen) continue;
      if (!keys.empty()) out += ',';
      out += key;
      out += ':';
      append_json_logprob(out, alt.logprob);
      keys.push_back(std::move(key));
    }
    out += '}';
  }
  out += "],\"text_offset\":[";
  size_t offset = c.text_offset;
  for (size_t i = 0; i < c.logprobs.size(); ++i) {
    if (i) out += ',';
    append_json_int(out, static_cast<int64_t>(offset));
    offset += c.logprobs[i].token.size();
  }
  out += "]}";
}

void append_bytes(std::string& out, std::string_view token) {
  out += "\"bytes\":[";
  for (size_t i = 0; i < token.size(); ++i) {
    if (i) out += ',';
    append_json_int(out, static_cast<unsigned char>(token[i]));
  }
  out += ']';
}

void append_chat_token(std::string& out, std::string_view token, float logprob) {
  out += "\"token\":";
  append_json_text(out, token);
  out += ",\"logprob\":";
  append_json_logprob(out, logprob);
  out += ',';
  append_bytes(out, token);
}

// Chat: {"content":[{"token","logprob","bytes","top_logprobs":[{"token","logprob","bytes"}]}]}.
void append_chat_logprobs(std::string& out, const choice_delta& c) {
  out += "{\"content\":[";
  for (size_t i = 0; i < c.logprobs.size(); ++i) {
    if (i) out += ',';
    const auto& t = c.logprobs[i];
    out += '{';
    append_chat_token(out, t.token, t.logprob);
    out += ",\"top_logprobs\":[";
    for (size_t j = 0; j < t.top.size(); ++j) {
      if (j) out += ',';
      out += '{';
      append_chat_token(out, t.top[j].token, t.top[j].logprob);
      out += '}';
    }
    out += "]}";
  }
  out += "]}";
}

void append_logprobs(std::string& out, const response_meta& meta, const choice_delta& c, bool always) {
  out += "\"logprobs\":";
  if (!meta.logprobs || (!always && c.logprobs.empty())) {
    out += "null";
  } else if (is_chat(meta)) {
    append_chat_logprobs(out, c);
  } else {
    append_completion_logprobs(out, c);
  }
}

void append_index(std::string& out, const choice_delta& c) {
  out += "{\"index\":";
  append_json_int(out, c.index);
}

}  // namespace

std::string response_json(const response_meta& meta, std::span<const choice_delta> choices,
                          const usage_counts& usage) {
  std::string out;
  append_head(out, meta, is_chat(meta) ? "chat.completion" : "text_completion");
  out += ",\"choices\":[";
  for (size_t i = 0; i < choices.size(); ++i) {
    const auto& c = choices[i];
    if (i) out += ',';
    append_index(out, c);
    if (is_chat(meta)) {
      out += ",\"message\":{\"role\":\"assistant\",\"content\":";
      append_json_text(out, c.text);
      out += '}';
    } else {
      out += ",\"text\":";
      append_json_text(out, c.text);
    }
    out += ',';
    append_logprobs(out, meta, c, /*always=*/true);
    out += ',';
    append_finish_reason(out, c.finish_reason);
    out += '}';
  }
  out += "],";
  append_usage(out, usage);
  out += '}';
  return out;
}

std::string chunk_json(const response_meta& meta, const choice_delta& delta, bool first_chat_chunk) {
  std::string out;
  append_head(out, meta, is_chat(meta) ? "chat.completion.chunk" : "text_completion");
  out += ",\"choices\":[";
  append_index(out, delta);
  if (is_chat(meta)) {
    out += ",\"delta\":{";
    if (first_chat_chunk) out += "\"role\":\"assistant\",";
    if (first_chat_chunk || !delta.text.empty()) {
      out += "\"content\":";
      append_json_text(out, delta.text);
    }
    out += '}';
  } else {
    out += ",\"text\":";
    append_json_text(out, delta.text);
  }
  out += ',';
  append_logprobs(out, meta, delta, /*always=*/false);
  out += ',';
  append_finish_reason(out, delta.finish_reason);
  out += "}]}";
  return out;
}

std::string usage_chunk_json(const response_meta& meta, const usage_counts& usage) {
  std::string out;
  append_head(out, meta, is_chat(meta) ? "chat.completion.chunk" : "text_completion");
  out += ",\"choices\":[],";
  append_usage(out, usage);
  out += '}';
  return out;
}

std::string sse_data(std::string_view json) {
  std::string out;
  out.reserve(json.size() + 8);
  out += "data: ";
  out += json;
  out += "\n\n";
  return out;
}

std::string models_json(std::span<const model_card> models) {
  std::string out = "{\"object\":\"list\",\"data\":[";
  for (size_t i = 0; i < models.size(); ++i) {
    const auto& m = models[i];
    if (i) out += ',';
    out += "{\"id\":";
    append_json_text(out, m.id);
    out += ",\"object\":\"model\",\"created\":";
    append_json_int(out, m.created);
    out += ",\"owned_by\":";
    append_json_text(out, m.owned_by);
    out += ",\"max_model_len\":";
    append_json_int(out, m.max_model_len);
    out += '}';
  }
  out += "]}";
  return out;
}

std::string make_request_id(std::string_view prefix) {
  thread_local std::mt19937_64 rng{[] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }()};
  static constexpr char hex[] = "0123456789abcdef";
  std::string id(prefix);
  for (int part = 0; part < 2; ++part) {
    const uint64_t bits = rng();
    for (int i = 0; i < 12; ++i) id += hex[(bits >> (4 * i)) & 0xF];
  }
  return id;
}

}  // namespace troupe::frontend::http
