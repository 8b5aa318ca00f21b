// The client side of `troupe bench serve`: a Server-Sent Events parser, what each OpenAI streaming
// event means to the benchmark, and the open-loop driver that times every request on one kj loop.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"

namespace troupe::bench {

// Splits a text/event-stream into events and hands each event's data (its `data:` lines joined by
// '\n') to the callback, as the HTML standard's event-stream interpretation does: lines end in LF,
// CRLF or CR; a blank line ends an event; lines starting with ':' are comments; fields other than
// `data` are ignored. Bytes may arrive split anywhere, a CRLF included. One event's data is capped
// at max_event_bytes: past it the parser stops and overflowed() is true (a runaway server cannot
// take all memory). Not thread-safe; one parser per response.
class sse_parser {
 public:
  static constexpr size_t max_event_bytes = 16 << 20;

  explicit sse_parser(std::function<void(std::string_view data)> on_event);
  void feed(std::string_view bytes);
  [[nodiscard]] bool overflowed() const { return overflowed_; }
  // True when the stream so far ends inside an event (bytes after the last blank line).
  [[nodiscard]] bool in_event() const { return !line_.empty() || has_data_; }

 private:
  void end_line();

  std::function<void(std::string_view)> on_event_;
  std::string line_;        // the current line, not yet ended
  std::string data_;        // the current event's data lines, each followed by '\n'
  bool has_data_ = false;   // a data field was seen (its value may be empty)
  bool after_cr_ = false;   // the previous byte was CR: an LF now ends nothing new
  bool overflowed_ = false;
};

enum class endpoint_kind { completions, chat };

// One streamed event as the benchmark reads it. A content event carries generated text: for
// completions a non-empty choices[0].text, for chat a non-empty choices[0].delta.content. Events
// with no text (chat's opening role event, a token whose bytes do not yet end a character, a
// finish_reason-only event) are not token arrivals.
struct stream_event {
  bool done = false;     // data: [DONE]
  bool content = false;  // generated text arrived
  std::optional<int64_t> completion_tokens, prompt_tokens;  // from a "usage" object
  std::optional<std::string> error;  // {"error": ...}, or the data is not JSON
};
[[nodiscard]] stream_event parse_stream_event(endpoint_kind endpoint, std::string_view data);

// One request's outcome. Times are seconds; chunk_times_s are content events' arrivals counted
// from the send (so TTFT is the first, ITLs are the gaps), and start_s is the send counted from the
// benchmark's start.
struct request_result {
  bool success = false;
  std::string error;  // when !success
  double start_s = 0;
  double e2e_s = 0;
  std::vector<double> chunk_times_s;
  int64_t output_tokens = 0;  // usage.completion_tokens, else the number of content events
  int64_t prompt_tokens = 0;  // usage.prompt_tokens, else what the caller asked for
  int http_status = 0;        // the response's status (0: none came)
};

// Reads one 200 response body (an event stream) fed in pieces, each with its arrival time, and
// judges it: a failure is an error event, a malformed or oversized event, or a stream that ends
// without `data: [DONE]`. Bytes after an error are ignored.
class stream_reader {
 public:
  explicit stream_reader(endpoint_kind endpoint);
  void feed(std::string_view bytes, double t_s);
  [[nodiscard]] bool failed() const { return !error_.empty(); }
  // The body ended at t_s (seconds since the send). `prompt_tokens` is used when no usage came.
  [[nodiscard]] request_result finish(double t_s, int64_t prompt_tokens) const;

 private:
  void on_event(std::string_view data);

  endpoint_kind endpoint_;
  sse_parser parser_;
  double now_s_ = 0;
  bool done_ = false;
  std::string error_;
  std::vector<double> chunk_times_s_;
  std::optional<int64_t> completion_tokens_, prompt_tokens_;
};

// The text of an error response body: {"error": {"message": ...}}, {"error": "..."}, or the body
// itself cut to a line.
[[nodiscard]] std::string error_message_of(std::string_view body);

// What the driver sends: bodies[i] is posted at arrivals_s[i] seconds after the start, but never
// while max_concurrency requests are in flight (0: no cap); such arrivals wait in order.
struct load_plan {
  endpoint_kind endpoint = endpoint_kind::completions;
  std::vector<std::string> bodies;
  std::vector<double> arrivals_s;
  std::vector<int64_t> prompt_tokens;  // per request, for when the server reports no usage
  int64_t max_concurrency = 0;
  double timeout_s = 0;  // per request, send to end of body; 0: none
};

struct load_progress {
  int64_t total = 0, sent = 0, completed = 0, failed = 0;
};

// An OpenAI-compatible server at a base URL (http://HOST[:PORT][/PREFIX]; https is not supported),
// reached over one kj event loop owned by this object, created on and used from one thread. Each
// in-flight request has its own connection (kj's address client opens one when all are busy and
// reuses idle ones), so the concurrency reaches the cap.
class serve_client {
 public:
  // Parses the URL and checks within connect_timeout_s that the server accepts connections.
  [[nodiscard]] static expected<std::unique_ptr<serve_client>> connect(const std::string& url, std::string api_key,
                                                                      double connect_timeout_s);
  ~serve_client();

  // GET PREFIX + path_after_prefix: the body of a 200 response (at most 8 MiB), else an error.
  [[nodiscard]] expected<std::string> get_text(const std::string& path_after_prefix, double timeout_s);
  // GET PREFIX/v1/models: the ids the server lists, in order.
  [[nodiscard]] expected<std::vector<std::string>> list_models(double timeout_s);
  // Runs the plan to its end; results are in plan order. `on_progress` runs on this thread after
  // each send and each completion.
  [[nodiscard]] std::vector<request_result> run(const load_plan& plan,
                                                const std::function<void(const load_progress&)>& on_progress,
                                                double& duration_s);
  // PREFIX/v1/completions or PREFIX/v1/chat/completions.
  [[nodiscard]] std::string path_of(endpoint_kind endpoint) const;

 private:
  struct impl;
  explicit serve_client(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace troupe::bench
