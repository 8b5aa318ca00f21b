// The client side of `troupe bench serve`: SSE parsing, event meaning, and the kj driver that sends
// the plan open-loop and times each request (see serve_client.hpp).
#include "bench/serve_client.hpp"

#include <kj/async-io.h>
#include <kj/compat/http.h>
#include <kj/compat/url.h>
#include <simdjson.h>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <deque>

namespace troupe::bench {

// ---- Server-Sent Events ----

sse_parser::sse_parser(std::function<void(std::string_view data)> on_event) : on_event_(std::move(on_event)) {}

void sse_parser::feed(std::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size() && !overflowed_) {
    if (after_cr_) {  // CRLF is one line end, even when the LF comes in the next piece
      after_cr_ = false;
      if (bytes[i] == '\n') {
        ++i;
        continue;
      }
    }
    const size_t end = bytes.find_first_of("\r\n", i);
    const size_t stop = end == std::string_view::npos ? bytes.size() : end;
    line_.append(bytes.substr(i, stop - i));
    if (line_.size() + data_.size() > max_event_bytes) {
      overflowed_ = true;
      return;
    }
    if (end == std::string_view::npos) return;
    after_cr_ = bytes[end] == '\r';
    end_line();
    i = end + 1;
  }
}

void sse_parser::end_line() {
  if (line_.empty()) {  // a blank line ends the event
    if (has_data_) {
      if (!data_.empty() && data_.back() == '\n') data_.pop_back();
      on_event_(data_);
    }
    data_.clear();
    has_data_ = false;
    return;
  }
  if (line_[0] != ':') {  // ':' starts a comment (keep-alives)
    const size_t colon = line_.find(':');
    const std::string_view line = line_;
    const std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string::npos ? std::string_view() : line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
    if (field == "data") {
      data_.append(value);
      data_ += '\n';
      has_data_ = true;
    }
  }
  line_.clear();
}

// ---- what the events mean ----

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::string cut(std::string_view s, size_t n) {
  std::string out(s.substr(0, n));
  for (char& c : out)
    if (c == '\n' || c == '\r') c = ' ';
  if (s.size() > n) out += "...";
  return out;
}

// The message of an "error" member: {"message": ...} (OpenAI's shape), a bare string, or the JSON.
std::string error_text(simdjson::dom::element err) {
  std::string_view s;
  if (err.get(s) == simdjson::SUCCESS) return std::string(s);
  if (err["message"].get(s) == simdjson::SUCCESS) return std::string(s);
  return cut(simdjson::minify(err), 300);
}

// One parser per thread: it keeps its buffers between events, which matters at thousands a second.
simdjson::dom::parser& json_parser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

}  // namespace

stream_event parse_stream_event(endpoint_kind endpoint, std::string_view data) {
  stream_event ev;
  data = trim(data);
  if (data == "[DONE]") {
    ev.done = true;
    return ev;
  }
  simdjson::dom::element doc;
  if (json_parser().parse(data.data(), data.size()).get(doc) != simdjson::SUCCESS || !doc.is_object()) {
    ev.error = "malformed event: " + cut(data, 200);
    return ev;
  }
  if (simdjson::dom::element err; doc["error"].get(err) == simdjson::SUCCESS && !err.is_null()) {
    ev.error = error_text(err);
    return ev;
  }
  if (simdjson::dom::array choices; doc["choices"].get(choices) == simdjson::SUCCESS && choices.size() > 0) {
    const simdjson::dom::element first = choices.at(0).value_unsafe();
    std::string_view text;
    const auto found = endpoint == endpoint_kind::completions ? first["text"].get(text)
                                                              : first["delta"]["content"].get(text);
    ev.content = found == simdjson::SUCCESS && !text.empty();
  }
  if (simdjson::dom::object usage; doc["usage"].get(usage) == simdjson::SUCCESS) {
    if (int64_t v = 0; usage["completion_tokens"].get(v) == simdjson::SUCCESS) ev.completion_tokens = v;
    if (int64_t v = 0; usage["prompt_tokens"].get(v) == simdjson::SUCCESS) ev.prompt_tokens = v;
  }
  return ev;
}

std::string error_message_of(std::string_view body) {
  body = trim(body);
  simdjson::dom::element doc, err;
  if (json_parser().parse(body.data(), body.size()).get(doc) == simdjson::SUCCESS &&
      doc["error"].get(err) == simdjson::SUCCESS)
    return error_text(err);
  if (!body.empty() && body[0] == '<') return "";  // an HTML error page says no more than its status
  return cut(body.substr(0, body.find('\n')), 300);
}

stream_reader::stream_reader(endpoint_kind endpoint)
    : endpoint_(endpoint), parser_([this](std::string_view data) { on_event(data); }) {}

void stream_reader::feed(std::string_view bytes, double t_s) {
  if (failed() || done_) return;  // nothing after [DONE] or an error counts
  now_s_ = t_s;
  parser_.feed(bytes);
  if (parser_.overflowed() && !failed()) error_ = "an event exceeded 16 MiB";
}

void stream_reader::on_event(std::string_view data) {
  if (failed() || done_) return;
  stream_event ev = parse_stream_event(endpoint_, data);
  if (ev.error) {
    error_ = ev.error->empty() ? "error event" : *ev.error;
    return;
  }
  done_ = ev.done;
  if (ev.content) chunk_times_s_.push_back(now_s_);
  if (ev.completion_tokens) completion_tokens_ = ev.completion_tokens;
  if (ev.prompt_tokens) prompt_tokens_ = ev.prompt_tokens;
}

request_result stream_reader::finish(double t_s, int64_t prompt_tokens) const {
  request_result r;
  r.e2e_s = t_s;
  r.chunk_times_s = chunk_times_s_;
  r.output_tokens = completion_tokens_.value_or(int64_t(chunk_times_s_.size()));
  r.prompt_tokens = prompt_tokens_.value_or(prompt_tokens);
  if (failed()) {
    r.error = error_;
  } else if (!done_) {
    r.error = parser_.in_event() ? "the stream was cut inside an event" : "the stream ended without data: [DONE]";
  } else {
    r.success = true;
  }
  return r;
}

// ---- the kj driver ----

namespace {

using steady = std::chrono::steady_clock;

double seconds(steady::duration d) { return std::chrono::duration<double>(d).count(); }

kj::Duration kj_seconds(double s) { return int64_t(s * 1e9) * kj::NANOSECONDS; }

std::string cli_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

std::string with_message(const std::string& message) { return message.empty() ? "" : ": " + message; }

std::string http_error(uint code, const std::string& status, std::string_view body) {
  return "HTTP " + std::to_string(code) + " " + status + with_message(error_message_of(body));
}

std::string describe(const kj::Exception& e) {
  std::string s = e.getDescription().cStr();
  return s.empty() ? "request failed" : s;
}

}  // namespace

struct serve_client::impl {
  // Declared first, destroyed last: everything below lives on this loop.
  kj::AsyncIoContext io = kj::setupAsyncIo();
  kj::HttpHeaderId content_type, accept, authorization;
  kj::Own<kj::HttpHeaderTable> table;
  kj::Own<kj::NetworkAddress> address;
  kj::Own<kj::HttpClient> client;
  std::string url, host, prefix, bearer;

  kj::Timer& timer() { return io.provider->getTimer(); }

  // The headers every request carries; the strings they point at live in this object.
  void set_headers(kj::HttpHeaders& h, bool post) const {
    h.set(kj::HttpHeaderId::HOST, host.c_str());
    if (post) h.set(content_type, "application/json");
    h.set(accept, post ? "text/event-stream" : "application/json");
    if (!bearer.empty()) h.set(authorization, bearer.c_str());
  }
};

serve_client::serve_client(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
serve_client::~serve_client() = default;

std::string serve_client::path_of(endpoint_kind endpoint) const {
  return impl_->prefix + (endpoint == endpoint_kind::chat ? "/v1/chat/completions" : "/v1/completions");
}

expected<std::unique_ptr<serve_client>> serve_client::connect(const std::string& url, std::string api_key,
                                                              double connect_timeout_s) {
  // A server that closes a connection while we write would otherwise kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  auto c = std::make_unique<impl>();
  c->url = url;
  KJ_IF_MAYBE (u, kj::Url::tryParse(kj::StringPtr(url.c_str()))) {
    if (u->scheme == "https") return fail("--url " + url + ": https is not supported; use http://");
    if (u->scheme != "http") return fail("--url " + url + ": expected http://HOST[:PORT]");
    if (u->host.size() == 0) return fail("--url " + url + ": no host");
    c->host = u->host.cStr();
    for (const kj::String& part : u->path) c->prefix += "/" + std::string(part.cStr());
  } else {
    return fail("--url " + url + ": malformed URL (expected http://HOST[:PORT])");
  }
  kj::HttpHeaderTable::Builder builder;
  c->content_type = builder.add("Content-Type");
  c->accept = builder.add("Accept");
  c->authorization = builder.add("Authorization");
  c->table = builder.build();
  if (!api_key.empty()) c->bearer = "Bearer " + api_key;
  try {
    auto& ws = c->io.waitScope;
    c->address = c->io.provider->getNetwork().parseAddress(c->host.c_str(), 80).wait(ws);
    // One connection now, so that a wrong port or a dead host is one clear error, not N failures.
    c->timer().timeoutAfter(kj_seconds(connect_timeout_s), c->address->connect()).wait(ws);
  } catch (const kj::Exception& e) {
    return fail("cannot connect to " + url + ": " + describe(e));
  }
  kj::HttpClientSettings settings;
  c->client = kj::newHttpClient(c->timer(), *c->table, *c->address, settings);
  return std::unique_ptr<serve_client>(new serve_client(std::move(c)));
}

expected<std::string> serve_client::get_text(const std::string& path_after_prefix, double timeout_s) {
  impl& c = *impl_;
  const std::string path = c.prefix + path_after_prefix;
  struct reply {
    uint code = 0;
    std::string status, body;
  };
  reply r;
  try {
    kj::HttpHeaders headers(*c.table);
    c.set_headers(headers, false);
    auto req = c.client->request(kj::HttpMethod::GET, path.c_str(), headers);
    auto got = req.response.then([](kj::HttpClient::Response&& resp) {
      reply out{resp.statusCode, resp.statusText.cStr(), {}};
      auto body = kj::mv(resp.body);
      auto text = body->readAllText(8 << 20);
      return text.attach(kj::mv(body)).then([out = std::move(out)](kj::String&& s) mutable {
        out.body = s.cStr();
        return std::move(out);
      });
    });
    r = c.timer().timeoutAfter(kj_seconds(timeout_s), kj::mv(got)).wait(c.io.waitScope);
  } catch (const kj::Exception& e) {
    return fail("GET " + path + ": " + describe(e));
  }
  if (r.code != 200) return fail("GET " + path + ": " + http_error(r.code, r.status, r.body));
  return std::move(r.body);
}

expected<std::vector<std::string>> serve_client::list_models(double timeout_s) {
  const std::string path = impl_->prefix + "/v1/models";
  auto body = get_text("/v1/models", timeout_s);
  if (!body) return body.err();
  simdjson::dom::element doc;
  simdjson::dom::array data;
  if (json_parser().parse(*body).get(doc) != simdjson::SUCCESS || doc["data"].get(data) != simdjson::SUCCESS)
    return fail("GET " + path + ": not an OpenAI model list: " + cut(*body, 200));
  std::vector<std::string> ids;
  for (simdjson::dom::element m : data) {
    if (std::string_view id; m["id"].get(id) == simdjson::SUCCESS) ids.emplace_back(id);
  }
  return ids;
}

namespace {

// One run of a plan: arrivals on the kj timer, a FIFO of arrivals waiting for a concurrency slot,
// and one chain of promises per request that never rejects (every failure becomes its result).
class load_run final : public kj::TaskSet::ErrorHandler {
 public:
  load_run(kj::HttpClient& client, kj::Timer& timer, const load_plan& plan, std::string path,
           std::function<void(kj::HttpHeaders&)> set_headers, const kj::HttpHeaderTable& table,
           const std::function<void(const load_progress&)>& on_progress)
      : client_(client), timer_(timer), plan_(plan), path_(std::move(path)), set_headers_(std::move(set_headers)),
        table_(table), on_progress_(on_progress), results_(plan.bodies.size()), tasks_(*this) {
    progress_.total = int64_t(plan.bodies.size());
  }

  std::vector<request_result> run(kj::WaitScope& ws, double& duration_s) {
    if (plan_.bodies.empty()) return {};
    auto done = kj::newPromiseAndFulfiller<void>();
    all_done_ = kj::mv(done.fulfiller);
    t0_ = steady::now();
    t0_kj_ = timer_.now();
    last_end_ = t0_;
    auto arrivals = arrive(0).eagerlyEvaluate([this](kj::Exception&& e) { taskFailed(kj::mv(e)); });
    done.promise.wait(ws);
    duration_s = seconds(last_end_ - t0_);
    return std::move(results_);
  }

  void taskFailed(kj::Exception&& e) override {  // only our own bugs land here; say so, don't hang
    std::fprintf(stderr, "error: serve bench driver: %s\n", describe(e).c_str());
    if (all_done_->isWaiting()) all_done_->reject(kj::mv(e));
  }

 private:
  struct request_state {
    explicit request_state(endpoint_kind e) : reader(e) {}
    steady::time_point sent;
    stream_reader reader;
    kj::Own<kj::AsyncInputStream> body;
    std::string error;  // set when the request failed before or outside the stream
    int status = 0;     // the response's HTTP status
    std::array<char, 16 << 10> buf;
  };

  kj::Promise<void> arrive(size_t i) {
    if (i == plan_.bodies.size()) return kj::READY_NOW;
    return timer_.atTime(t0_kj_ + kj_seconds(plan_.arrivals_s[i])).then([this, i]() {
      tasks_.add(acquire().then([this, i]() { return send(i); }));
      return arrive(i + 1);
    });
  }

  kj::Promise<void> acquire() {
    if (plan_.max_concurrency <= 0 || in_flight_ < plan_.max_concurrency) {
      ++in_flight_;
      return kj::READY_NOW;
    }
    auto paf = kj::newPromiseAndFulfiller<void>();
    waiting_.push_back(kj::mv(paf.fulfiller));
    return kj::mv(paf.promise);
  }

  void release() {
    if (waiting_.empty()) {
      --in_flight_;
      return;
    }
    auto next = kj::mv(waiting_.front());  // the slot passes straight to the oldest waiting arrival
    waiting_.pop_front();
    next->fulfill();
  }

  kj::Promise<void> send(size_t i) {
    auto state = kj::heap<request_state>(plan_.endpoint);
    request_state& s = *state;
    s.sent = steady::now();
    ++progress_.sent;
    on_progress_(progress_);
    kj::Promise<void> work = nullptr;
    {
      kj::HttpHeaders headers(table_);
      set_headers_(headers);
      const std::string& body = plan_.bodies[i];
      auto req = client_.request(kj::HttpMethod::POST, path_.c_str(), headers, body.size());
      work = req.body->write(body.data(), body.size())
                 .attach(kj::mv(req.body))
                 .then([response = kj::mv(req.response)]() mutable { return kj::mv(response); })
                 .then([this, &s](kj::HttpClient::Response&& r) { return on_response(s, kj::mv(r)); });
    }
    if (plan_.timeout_s > 0) {  // the request's own promise is cancelled, which drops its connection
      work = work.exclusiveJoin(timer_.afterDelay(kj_seconds(plan_.timeout_s)).then([this, &s]() {
        s.error = "timed out after " + cli_seconds(plan_.timeout_s) + " s (--timeout)";
      }));
    }
    return work
        .then([]() {}, [&s](kj::Exception&& e) { s.error = describe(e); })
        .then([this, &s, i]() { finish(s, i); })
        .attach(kj::mv(state));
  }

  kj::Promise<void> on_response(request_state& s, kj::HttpClient::Response&& r) {
    s.status = int(r.statusCode);
    if (r.statusCode != 200) {
      auto head = std::make_shared<std::string>("HTTP " + std::to_string(r.statusCode) + " " + r.statusText.cStr());
      auto body = kj::mv(r.body);
      auto text = body->readAllText(64 << 10);
      return text.attach(kj::mv(body))
          .then([&s, head](kj::String&& t) { s.error = *head + with_message(error_message_of(t.cStr())); },
                [&s, head](kj::Exception&&) { s.error = *head; });
    }
    s.body = kj::mv(r.body);
    return read_body(s);
  }

  kj::Promise<void> read_body(request_state& s) {
    return s.body->tryRead(s.buf.data(), 1, s.buf.size()).then([this, &s](size_t n) -> kj::Promise<void> {
      if (n == 0) return kj::READY_NOW;
      s.reader.feed(std::string_view(s.buf.data(), n), seconds(steady::now() - s.sent));
      if (s.reader.failed()) return kj::READY_NOW;  // the error is known; drop the connection
      return read_body(s);
    });
  }

  void finish(request_state& s, size_t i) {
    const steady::time_point end = steady::now();
    request_result r = s.reader.finish(seconds(end - s.sent), plan_.prompt_tokens.empty() ? 0 : plan_.prompt_tokens[i]);
    if (!s.error.empty()) {
      r.success = false;
      r.error = s.error;
    }
    r.start_s = seconds(s.sent - t0_);
    r.http_status = s.status;
    results_[i] = std::move(r);
    last_end_ = std::max(last_end_, end);
    ++(results_[i].success ? progress_.completed : progress_.failed);
    on_progress_(progress_);
    release();
    if (progress_.completed + progress_.failed == progress_.total && all_done_->isWaiting()) all_done_->fulfill();
  }

  kj::HttpClient& client_;
  kj::Timer& timer_;
  const load_plan& plan_;
  const std::string path_;
  const std::function<void(kj::HttpHeaders&)> set_headers_;
  const kj::HttpHeaderTable& table_;
  const std::function<void(const load_progress&)>& on_progress_;
  std::vector<request_result> results_;
  load_progress progress_;
  int64_t in_flight_ = 0;
  std::deque<kj::Own<kj::PromiseFulfiller<void>>> waiting_;
  kj::Own<kj::PromiseFulfiller<void>> all_done_;
  steady::time_point t0_, last_end_;
  kj::TimePoint t0_kj_ = kj::origin<kj::TimePoint>();
  kj::TaskSet tasks_;  // last: destroyed first, cancelling any request still running
};

}  // namespace

std::vector<request_result> serve_client::run(const load_plan& plan,
                                              const std::function<void(const load_progress&)>& on_progress,
                                              double& duration_s) {
  impl& c = *impl_;
  load_run run(*c.client, c.timer(), plan, path_of(plan.endpoint),
               [&c](kj::HttpHeaders& h) { c.set_headers(h, true); }, *c.table, on_progress);
  return run.run(c.io.waitScope, duration_s);
}

}  // namespace troupe::bench
