// Streamed completions for the cluster tests: a request body, and a server-sent-event stream read
// back into its text, finish reason, error event and whether it ended with [DONE].
#pragma once

#include <simdjson.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "tests/cluster/http_client.hpp"

namespace troupe::test {

// Text of a streamed completion: the concatenated "text" deltas; `finish` gets the finish reason,
// `error` the error message of an error event.
struct streamed {
  std::string text, finish, error;
  int64_t completion_tokens = -1;
  bool done = false;  // ended with [DONE]
  int status = 0;
};

inline streamed parse_stream(int status, const std::string& body) {
  streamed s;
  s.status = status;
  simdjson::dom::parser parser;
  for (const auto& ev : sse_events(body)) {
    if (ev == "[DONE]") {
      s.done = true;
      continue;
    }
    auto doc = parser.parse(ev);
    if (doc.error()) continue;
    simdjson::dom::element err;
    if (!doc["error"].get(err)) {
      std::string_view m;
      if (!err["message"].get(m)) s.error = std::string(m);
      continue;
    }
    int64_t ct = 0;
    if (!doc["usage"]["completion_tokens"].get(ct)) s.completion_tokens = ct;
    simdjson::dom::array choices;
    if (doc["choices"].get(choices)) continue;
    for (auto c : choices) {
      std::string_view t;
      if (!c["text"].get(t)) s.text += t;
      if (!c["delta"]["content"].get(t)) s.text += t;
      std::string_view f;
      if (!c["finish_reason"].get(f)) s.finish = std::string(f);
    }
  }
  return s;
}

inline streamed stream_completion(uint16_t port, const std::string& body) {
  auto r = http_request(port, "POST", "/v1/completions", body);
  if (r.status != 200) {
    streamed s;
    s.status = r.status;
    s.error = r.body + r.error;
    return s;
  }
  return parse_stream(r.status, r.body);
}

// A completion request for the model the clients call `model`.
inline std::string completion_body(const std::string& prompt, int max_tokens, bool stream, const std::string& extra = {},
                                   const std::string& model = "cluster-model") {
  return "{\"model\":\"" + model + "\",\"prompt\":\"" + prompt + "\",\"max_tokens\":" + std::to_string(max_tokens) +
         ",\"temperature\":0,\"stream\":" + (stream ? "true" : "false") + extra + "}";
}

// `n` concurrent streamed completions, each on its own connection and thread, with the bodies
// `body(i)` makes; `started` counts those that received text. Joined when destroyed.
class stream_load {
 public:
  stream_load(uint16_t port, int n, const std::function<std::string(int)>& body) : results(size_t(n)) {
    for (int i = 0; i < n; ++i)
      threads_.emplace_back([this, port, text = body(i), i]() {
        http_connection conn(port, 120);
        conn.send_raw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " +
                      std::to_string(text.size()) + "\r\n\r\n" + text);
        const int status = conn.read_head();
        if (status == 200) {
          conn.read_body_until([](const std::string& b) { return b.find("\"text\"") != std::string::npos; });
          started.fetch_add(1);
        }
        results[size_t(i)] = parse_stream(status, conn.read_body_until([](const std::string&) { return false; }));
      });
  }
  ~stream_load() { join(); }
  stream_load(const stream_load&) = delete;
  stream_load& operator=(const stream_load&) = delete;

  // Waits until `k` streams have started (false after 60 s).
  bool started_at_least(int k) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (started.load() < k && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return started.load() >= k;
  }
  // Waits for every stream to end (none hangs: the socket timeout of 120 s would end it).
  void join() {
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  std::vector<streamed> results;  // read once joined
  std::atomic<int> started{0};

 private:
  std::vector<std::thread> threads_;
};

}  // namespace troupe::test
