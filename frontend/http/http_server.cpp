// The OpenAI-compatible HTTP server (see http_server.hpp).
#include "frontend/http/http_server.hpp"

#include <caf/all.hpp>
#include <charconv>
#include <chrono>

#include "common/json_escape.hpp"
#include "frontend/core/session_driver.hpp"
#include "frontend/http/openai_request.hpp"
#include "frontend/http/openai_response.hpp"

namespace troupe::frontend::http {

namespace {

using clock = std::chrono::steady_clock;

constexpr const char* body_timeout_marker = "troupe: request body timeout";

// `insecure`: the cluster port runs without TLS (--insecure-cluster); said here so that monitoring sees it.
// `failed`: the autoscaler's reason for marking the model failed (empty: it has not).
std::string status_json(std::string_view status, size_t groups, bool insecure, const std::string& failed = {}) {
  std::string out = std::string("{\"status\":\"") + std::string(status) + "\",\"live_groups\":" +
                    std::to_string(groups) + ",\"cluster_transport\":\"" + (insecure ? "insecure" : "mutual-tls") + "\"" +
                    (insecure ? ",\"warning\":\"the cluster port runs without TLS (--insecure-cluster): anyone who reaches it can join\""
                              : "");
  if (!failed.empty()) {
    out += ",\"model_failed\":";
    append_json_string(out, failed);
  }
  return out + "}";
}

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status >= 500 ? "Internal Server Error" : "Error";
  }
}

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Label values as Prometheus escapes them.
std::string label_value(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// Per-group gauges, rendered from the current snapshot at each scrape (so a group that left has no
// stale series).
std::string group_metrics(const std::vector<cluster::group_status>& groups) {
  std::string out;
  auto family = [&out, &groups](const char* name, const char* help, auto value) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n";
    for (const auto& g : groups) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.9g", double(value(g)));
      out += std::string(name) + "{group=\"" + label_value(g.info.name) + "\"} " + buf + "\n";
    }
  };
  family("troupe_group_running", "Sequences running in the shard group (last load report).",
         [](const cluster::group_status& g) { return g.load.running; });
  family("troupe_group_waiting", "Requests waiting in the shard group's queue (last load report).",
         [](const cluster::group_status& g) { return g.load.waiting; });
  family("troupe_group_kv_used_fraction", "Share of the shard group's KV cache blocks in use.",
         [](const cluster::group_status& g) {
           return g.load.kv_blocks_total > 0 ? double(g.load.kv_blocks_used) / g.load.kv_blocks_total : 0.0;
         });
  family("troupe_group_tokens_per_second", "Tokens the shard group generated per second (last report).",
         [](const cluster::group_status& g) { return g.load.tokens_per_s; });
  family("troupe_group_queue_delay_p90_seconds",
         "Arrival at the shard group to first token, p90 over the last report (or the oldest waiting request's age).",
         [](const cluster::group_status& g) { return g.load.queue_delay_p90_s; });
  family("troupe_group_generated_tokens", "Tokens the shard group generated since it started (last report).",
         [](const cluster::group_status& g) { return g.load.generated_tokens; });
  family("troupe_group_requests_routed", "Requests routed to the shard group since it joined.",
         [](const cluster::group_status& g) { return g.routed; });
  family("troupe_group_outstanding_tokens", "Prompt and output tokens routed to the group and not yet done.",
         [](const cluster::group_status& g) { return g.outstanding_tokens; });
  return out;
}

// The request-level metrics the front end records.
struct frontend_metrics {
  explicit frontend_metrics(metrics_registry& r)
      : registry(r),
        ttft(r.histogram("troupe_time_to_first_token_seconds", "Time from a request's arrival to its first token.",
                         latency_seconds_buckets())),
        tpot(r.histogram("troupe_time_per_output_token_seconds",
                         "Time per output token after the first, per request.", latency_seconds_buckets())),
        e2e(r.histogram("troupe_e2e_request_latency_seconds", "Time from a request's arrival to its end.",
                        latency_seconds_buckets())),
        running(r.gauge("troupe_requests_in_flight", "Generation requests this router is serving now.")),
        queue(r.gauge("troupe_queue_depth", "Requests waiting in the shard groups' queues (sum of load reports).")),
        groups(r.gauge("troupe_groups_live", "Live shard groups.")),
        prompt_tokens(r.counter("troupe_prompt_tokens_total", "Prompt tokens of finished requests.")),
        output_tokens(r.counter("troupe_generation_tokens_total", "Tokens generated for finished requests.")) {}

  void count(std::string_view endpoint, int status) {
    registry
        .counter("troupe_requests_total", "HTTP requests by endpoint and status code.",
                 {{"endpoint", std::string(endpoint)}, {"status", std::to_string(status)}})
        .inc();
  }

  metrics_registry& registry;
  histogram& ttft;
  histogram& tpot;
  histogram& e2e;
  gauge& running;
  gauge& queue;
  gauge& groups;
  counter& prompt_tokens;
  counter& output_tokens;
};

}  // namespace

class http_frontend::error_handler final : public kj::HttpServerErrorHandler {
 public:
  explicit error_handler(const kj::HttpHeaderTable& table) : table_(table) {}

  // A request that does not parse as HTTP (e.g. a non-numeric Content-Length): 400 in OpenAI's shape.
  kj::Promise<void> handleClientProtocolError(kj::HttpHeaders::ProtocolError e,
                                              kj::HttpService::Response& response) override {
    api_error err{int(e.statusCode), "malformed HTTP request: " + std::string(e.description.cStr()),
                  "invalid_request_error", {}, {}};
    return send(response, err);
  }

  kj::Promise<void> handleApplicationError(kj::Exception exception,
                                           kj::Maybe<kj::HttpService::Response&> response) override {
    if (exception.getType() == kj::Exception::Type::DISCONNECTED) return kj::READY_NOW;  // the client left
    KJ_IF_MAYBE(r, response) {
      // KJ refuses a non-numeric Content-Length when it opens the body, before our handler runs:
      // the client's fault, so 400.
      const std::string what = exception.getDescription().cStr();
      if (what.find("invalid Content-Length") != std::string::npos)
        return send(*r, api_error{400, "malformed HTTP request: the Content-Length header is not a number (" + what + ")",
                                  "invalid_request_error", {}, {}});
      return send(*r, api_error{500, "internal error: " + std::string(exception.getDescription().cStr()),
                                "server_error", {}, {}});
    }
    return kj::READY_NOW;
  }

 private:
  kj::Promise<void> send(kj::HttpService::Response& response, const api_error& err) {
    kj::HttpHeaders headers(table_);
    headers.set(kj::HttpHeaderId::CONTENT_TYPE, "application/json");
    auto body = kj::heapString(error_json(err));
    auto out = response.send(uint(err.status), reason_phrase(err.status), headers, body.size());
    auto done = out->write(body.begin(), body.size());
    return done.attach(kj::mv(out), kj::mv(body));
  }

  const kj::HttpHeaderTable& table_;
};

class http_frontend::service final : public kj::HttpService {
 public:
  // The event loop's timer (set by listen(), before the first request).
  void use_timer(kj::Timer& timer) { timer_ = &timer; }

  service(const kj::HttpHeaderTable& table, kj::HttpHeaderId authorization, kj::HttpHeaderId cache_control,
          frontend_context context, http_options options)
      : table_(table),
        authorization_(authorization),
        cache_control_(cache_control),
        ctx_(std::move(context)),
        model_(*ctx_.model),
        streams_(ctx_.streams),
        view_(ctx_.view),
        metrics_(*ctx_.metrics),
        options_(options) {}

  kj::Promise<void> request(kj::HttpMethod method, kj::StringPtr url, const kj::HttpHeaders& headers,
                            kj::AsyncInputStream& body, Response& response) override {
    std::string_view path(url.cStr(), url.size());
    path = path.substr(0, path.find('?'));
    const bool get = method == kj::HttpMethod::GET || method == kj::HttpMethod::HEAD;
    const bool open_path = path == "/health" || path == "/metrics";
    const key_entry* key = nullptr;
    if (ctx_.keys->enabled() && (!open_path || ctx_.protect_metrics)) {
      std::string_view presented;
      KJ_IF_MAYBE(h, headers.get(authorization_)) { presented = api_keys::bearer(std::string_view(h->cStr(), h->size())); }
      if (presented.empty())
        return send_error(response, api_error{401, "missing API key: send 'Authorization: Bearer YOUR_KEY'",
                                              "invalid_request_error", {}, "invalid_api_key"}, "auth");
      key = ctx_.keys->find(presented);
      if (key == nullptr)
        return send_error(response, api_error{401, "incorrect API key provided", "invalid_request_error", {},
                                              "invalid_api_key"}, "auth");
    }
    if (path == "/health") return get ? health(response) : not_allowed(response, "GET");
    if (path == "/v1/models") return get ? models(response) : not_allowed(response, "GET");
    if (path == "/metrics") return get ? metrics(response) : not_allowed(response, "GET");
    if (path == "/v1/completions" || path == "/v1/chat/completions") {
      if (method != kj::HttpMethod::POST) return not_allowed(response, "POST");
      const auto endpoint = path == "/v1/completions" ? api_endpoint::completions : api_endpoint::chat_completions;
      return generate(endpoint, headers, body, response, key);
    }
    return send_error(response, api_error{404, "no such endpoint: " + std::string(path) +
                                                   " (the API serves /v1/completions, /v1/chat/completions, "
                                                   "/v1/models, /health and /metrics)",
                                          "invalid_request_error", {}, {}}, "other");
  }

 private:
  // One generation request from its body to its last byte.
  struct exchange {
    std::unique_ptr<completion_session> session;
    Response* response = nullptr;
    response_meta meta;
    bool stream = false;
    bool include_usage = false;
    kj::Own<kj::AsyncOutputStream> out;  // once the stream's headers are sent
    std::vector<bool> first_sent;        // chat: the role delta went out, per choice
    std::vector<choice_delta> whole;     // non-stream: the completion so far, per choice
    std::string endpoint_label;
    bool counted = false;
    session_writer write;               // renders the session's updates (write_update)
  };

  // `retry_after_s` > 0: a Retry-After header (503 while draining, 429 when full).
  kj::Promise<void> send_text(Response& response, int status, std::string body, kj::StringPtr content_type,
                              int32_t retry_after_s = 0) {
    kj::HttpHeaders h(table_);
    h.set(kj::HttpHeaderId::CONTENT_TYPE, content_type);
    const auto retry = kj::str(retry_after_s);
    if (retry_after_s > 0) h.add("Retry-After", retry);
    auto text = kj::heapString(body.data(), body.size());
    auto out = response.send(uint(status), reason_phrase(status), h, text.size());
    auto done = out->write(text.begin(), text.size());
    return done.attach(kj::mv(out), kj::mv(text));
  }

  kj::Promise<void> send_error(Response& response, const api_error& e, std::string_view endpoint) {
    fm_.count(endpoint, e.status);
    return send_text(response, e.status, error_json(e), "application/json", e.retry_after_s);
  }

  kj::Promise<void> not_allowed(Response& response, const char* allowed) {
    return send_error(response, api_error{405, std::string("method not allowed: use ") + allowed,
                                          "invalid_request_error", {}, {}},
                      "other");
  }

  kj::Promise<void> health(Response& response) {
    const size_t live = view_->live_groups();
    if (ctx_.gate->draining()) {
      fm_.count("health", 503);
      return send_text(response, 503, status_json("draining", live, ctx_.insecure_cluster), "application/json");
    }
    const std::string failed = view_->model_failed();
    // Scaled to zero: requests are held while a group starts, so the node is ready, and idle.
    const bool idle = !live && failed.empty() && view_->holding();
    const int code = live || idle ? 200 : 503;
    fm_.count("health", code);
    const char* status = live ? "ok" : idle ? "idle" : failed.empty() ? "no live shard group" : "model failed";
    return send_text(response, code, status_json(status, live, ctx_.insecure_cluster, failed), "application/json");
  }

  kj::Promise<void> models(Response& response) {
    model_card card{model_.name(), created_, "troupe", model_.max_context()};
    fm_.count("models", 200);
    return send_text(response, 200, models_json(std::span<const model_card>(&card, 1)), "application/json");
  }

  kj::Promise<void> metrics(Response& response) {
    const auto groups = view_->groups();
    double waiting = 0;
    for (const auto& g : groups) waiting += g.load.waiting;
    fm_.queue.set(waiting);
    fm_.groups.set(double(groups.size()));
    fm_.count("metrics", 200);
    return send_text(response, 200, metrics_.render() + group_metrics(groups),
                     kj::StringPtr(prometheus_content_type.data(), prometheus_content_type.size()));
  }

  kj::Promise<void> generate(api_endpoint endpoint, const kj::HttpHeaders& headers, kj::AsyncInputStream& body,
                             Response& response, const key_entry* key) {
    const std::string label = endpoint == api_endpoint::completions ? "completions" : "chat_completions";
    // A place in the queue before anything else is spent on the request (body, template, tokenizer).
    auto admitted = ctx_.gate->admit(key, view_->room());
    if (auto* refused = std::get_if<failure>(&admitted)) return send_error(response, to_api_error(*refused), label);
    auto slot = kj::heap<admission::ticket>(std::move(std::get<admission::ticket>(admitted)));
    // Content-Length is checked before the body is read: a huge declared body is refused unread.
    KJ_IF_MAYBE(length, headers.get(kj::HttpHeaderId::CONTENT_LENGTH)) {
      uint64_t n = 0;
      auto [p, ec] = std::from_chars(length->begin(), length->end(), n);
      if (length->size() == 0 || ec != std::errc() || p != length->end())
        return send_error(response, api_error{400, "Content-Length '" + std::string(length->cStr()) +
                                                       "' is not a number", "invalid_request_error", {}, {}}, label);
      if (n > options_.max_body_bytes)
        return send_error(response, too_large(n), label);
    }
    bool no_cache = false;
    KJ_IF_MAYBE(cc, headers.get(cache_control_)) {
      no_cache = std::string_view(cc->cStr(), cc->size()).find("no-cache") != std::string_view::npos;
    }
    // The whole body within the body timeout: a client that trickles it is answered 408 and closed.
    auto timed_out = timer_->afterDelay(options_.body_timeout.count() * kj::MILLISECONDS).then([]() -> kj::String {
      kj::throwFatalException(kj::Exception(kj::Exception::Type::OVERLOADED, __FILE__, __LINE__,
                                            kj::heapString(body_timeout_marker)));
    });
    return body.readAllText(options_.max_body_bytes + 1)
        .exclusiveJoin(kj::mv(timed_out))
        .then(
            [this, endpoint, label, no_cache, &response, slot = kj::mv(slot),
             tenant = key != nullptr ? key->label : std::string()](kj::String text) mutable -> kj::Promise<void> {
              if (text.size() > options_.max_body_bytes) return send_error(response, too_large(text.size()), label);
              return prepare(endpoint, label, kj::mv(text), no_cache, response, kj::mv(*slot), kj::mv(tenant));
            },
            [this, label, &response](kj::Exception&& e) -> kj::Promise<void> {
              if (e.getType() == kj::Exception::Type::DISCONNECTED) return kj::READY_NOW;
              if (e.getType() == kj::Exception::Type::OVERLOADED && e.getDescription() == body_timeout_marker)
                return send_error(response, api_error{408, "the request body did not arrive within " +
                                                               std::to_string(options_.body_timeout.count() / 1000.0) +
                                                               " s", "invalid_request_error", {}, {}},
                                  label);
              // readAllText's limit, or a body cut short.
              return send_error(response, api_error{413, "request body unreadable or larger than " +
                                                             std::to_string(options_.max_body_bytes) + " bytes: " +
                                                             std::string(e.getDescription().cStr()),
                                                    "invalid_request_error", {}, {}},
                                label);
            });
  }

  api_error too_large(uint64_t n) const {
    return api_error{413, "request body of " + std::to_string(n) + " bytes is larger than the limit of " +
                              std::to_string(options_.max_body_bytes) + " bytes",
                     "invalid_request_error", {}, {}};
  }

  // What the work pool hands back: the parsed request and the prepared one, or the client's error.
  struct preparation {
    api_request req;
    std::variant<troupe::request, api_error> result;
  };

  // Parses the body and runs the template and tokenizer on the work pool (never on this thread: a
  // big chat request takes seconds there), then starts the request.
  kj::Promise<void> prepare(api_endpoint endpoint, const std::string& label, kj::String body, bool no_cache,
                            Response& response, admission::ticket slot, std::string tenant) {
    const model_frontend& model = model_;
    // Boxed: a variant held in a promise's result trips GCC 12's maybe-uninitialized warning.
    auto work = [&model, endpoint, body = kj::mv(body)]() {
      auto p = kj::heap<preparation>();
      auto parsed = parse_api_request(endpoint, std::string_view(body.cStr(), body.size()));
      if (auto* e = std::get_if<api_error>(&parsed)) {
        p->result = std::move(*e);
        return p;
      }
      p->req = std::move(std::get<api_request>(parsed));
      auto prepared = model.prepare(p->req);
      if (auto* e = std::get_if<failure>(&prepared)) p->result = to_api_error(*e);
      else p->result = std::move(std::get<troupe::request>(prepared));
      return p;
    };
    return ctx_.pool->run<kj::Own<preparation>>(kj::mv(work))
        .then([this, endpoint, label, no_cache, &response, slot = kj::mv(slot),
               tenant = kj::mv(tenant)](kj::Own<preparation>&& boxed) mutable -> kj::Promise<void> {
          preparation& p = *boxed;
          if (auto* e = std::get_if<api_error>(&p.result)) return send_error(response, *e, label);
          auto& prepared = std::get<troupe::request>(p.result);
          prepared.tenant = kj::mv(tenant);
          prepared.deadline_ms = ctx_.request_timeout_ms;
          return start(endpoint, label, p.req, kj::mv(prepared), no_cache, response, kj::mv(slot));
        });
  }

  kj::Promise<void> start(api_endpoint endpoint, const std::string& label, const api_request& req,
                          troupe::request prepared, bool no_cache, Response& response, admission::ticket slot) {
    if (auto full = slot.add_tokens(int64_t(prepared.prompt.size())))
      return send_error(response, to_api_error(*full), label);
    if (view_->serving_groups() == 0 && !view_->holding())  // holding: the router waits for a group
      return send_error(response, api_error{503, "no live shard group: the cluster has no worker serving '" +
                                                     model_.name() + "' yet",
                                            "server_error", {}, {}},
                        label);

    auto x = kj::heap<exchange>();
    x->session = std::make_unique<completion_session>(model_, std::move(prepared),
                                                      req.cache && !no_cache, ctx_.ids->next(), *ctx_.door, streams_,
                                                      ctx_.cache);
    x->session->hold(std::move(slot));
    x->response = &response;
    x->stream = req.stream;
    x->include_usage = req.include_usage;
    x->meta.id = make_request_id(endpoint == api_endpoint::completions ? "cmpl-" : "chatcmpl-");
    x->meta.created = unix_seconds();
    x->meta.model = model_.name();
    x->meta.endpoint = endpoint;
    x->meta.logprobs = req.sampling.logprobs >= 0;
    x->first_sent.assign(size_t(x->session->samples()), false);
    x->whole.resize(size_t(x->session->samples()));
    for (int32_t i = 0; i < x->session->samples(); ++i) x->whole[size_t(i)].index = i;
    x->endpoint_label = label;
    x->session->start();
    fm_.running.add(1);
    auto& ref = *x;
    ref.write = [this, &ref](session_update& u) { return write_update(ref, u); };
    return drive_session(*ref.session, ref.write).attach(kj::defer([this]() { fm_.running.add(-1); }), kj::mv(x));
  }

  // Writes one update of the session: the whole response once done (non-stream), or its events.
  kj::Promise<void> write_update(exchange& x, session_update& u) {
    if (u.error && (!x.stream || !x.out)) return finish_error(x, to_api_error(*u.error));
    if (!x.stream) {
      for (auto& d : u.deltas) {
        auto& w = x.whole[size_t(d.index)];
        w.text += d.text;
        for (auto& lp : d.logprobs) w.logprobs.push_back(std::move(lp));
        if (d.finish_reason) w.finish_reason = d.finish_reason;
      }
      if (!u.done) return kj::READY_NOW;
      record(x, 200);
      return send_text(*x.response, 200, response_json(x.meta, x.whole, x.session->usage()), "application/json");
    }
    std::string events;
    for (auto& d : u.deltas) {
      const bool first = x.meta.endpoint == api_endpoint::chat_completions && !x.first_sent[size_t(d.index)];
      if (!first && d.text.empty() && d.logprobs.empty() && !d.finish_reason) continue;
      x.first_sent[size_t(d.index)] = true;
      events += sse_data(chunk_json(x.meta, d, first));
    }
    if (u.error) {
      const api_error e = to_api_error(*u.error);
      events += sse_data(error_json(e));
      record(x, e.status);
    }
    if (u.done) {
      if (!u.error && x.include_usage) events += sse_data(usage_chunk_json(x.meta, x.session->usage()));
      events += sse_done;
      if (!u.error) record(x, 200);
    }
    if (events.empty()) return kj::READY_NOW;
    if (!x.out) {
      kj::HttpHeaders h(table_);
      h.set(kj::HttpHeaderId::CONTENT_TYPE, "text/event-stream");
      h.set(cache_control_, "no-cache");
      x.out = x.response->send(200, "OK", h);
    }
    auto text = kj::heapString(events.data(), events.size());
    return x.out->write(text.begin(), text.size()).attach(kj::mv(text));
  }

  kj::Promise<void> finish_error(exchange& x, const api_error& e) {
    record(x, e.status);
    return send_text(*x.response, e.status, error_json(e), "application/json", e.retry_after_s);
  }

  // Counts a finished request and its latencies.
  void record(exchange& x, int status) {
    if (x.counted) return;
    x.counted = true;
    fm_.count(x.endpoint_label, status);
    if (status != 200) return;
    const auto& s = *x.session;
    const auto usage = s.usage();
    fm_.prompt_tokens.inc(double(usage.prompt_tokens));
    fm_.output_tokens.inc(double(usage.completion_tokens));
    const auto secs = [](clock::duration d) { return std::chrono::duration<double>(d).count(); };
    fm_.e2e.observe(secs(clock::now() - s.started()));
    if (s.first_token()) {
      fm_.ttft.observe(secs(*s.first_token() - s.started()));
      const int64_t per_sample = usage.completion_tokens / std::max(s.samples(), 1);
      if (per_sample > 1) fm_.tpot.observe(secs(s.last_token() - *s.first_token()) / double(per_sample - 1));
    }
  }

  const kj::HttpHeaderTable& table_;
  const kj::HttpHeaderId authorization_, cache_control_;
  frontend_context ctx_;
  const model_frontend& model_;
  std::shared_ptr<stream_registry> streams_;
  std::shared_ptr<router::cluster_view> view_;
  metrics_registry& metrics_;
  frontend_metrics fm_{metrics_};
  http_options options_;
  kj::Timer* timer_ = nullptr;
  const int64_t created_ = unix_seconds();
};

namespace {

struct header_table {
  kj::Own<kj::HttpHeaderTable> table;
  kj::HttpHeaderId authorization, cache_control;
};

header_table make_header_table() {
  kj::HttpHeaderTable::Builder builder;
  const auto authorization = builder.add("Authorization");
  const auto cache_control = builder.add("Cache-Control");
  return {builder.build(), authorization, cache_control};
}

}  // namespace

// Accepts connections for the HTTP server while fewer than `max` are open; over the bound a new
// connection is answered 503 (Retry-After: 1) and closed, so a flood of idle connections cannot
// take every file descriptor. Lives as long as the listen() promise.
class http_frontend::connection_cap final : private kj::TaskSet::ErrorHandler {
 public:
  connection_cap(kj::HttpServer& server, size_t max) : server_(server), max_(max) {}

  kj::Promise<void> accept_from(kj::ConnectionReceiver& receiver) {
    return receiver.accept().then([this, &receiver](kj::Own<kj::AsyncIoStream>&& connection) {
      if (open_ >= max_) {
        auto& c = *connection;
        tasks_.add(c.write(refusal.begin(), refusal.size()).attach(kj::mv(connection)));
      } else {
        ++open_;
        tasks_.add(server_.listenHttp(kj::mv(connection)).attach(kj::defer([this]() { --open_; })));
      }
      return accept_from(receiver);
    });
  }

 private:
  static constexpr kj::StringPtr refusal =
      "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\nContent-Type: "
      "application/json\r\nContent-Length: 115\r\n\r\n{\"error\":{\"message\":\"too many open connections\",\"type\":"
      "\"server_error\",\"param\":null,\"code\":\"too_many_connections\"}}\n"_kj;
  void taskFailed(kj::Exception&&) override {}  // a connection's end, as the server's own loop ignores it

  kj::HttpServer& server_;
  size_t max_;
  size_t open_ = 0;
  kj::TaskSet tasks_{*this};
};

http_frontend::http_frontend(frontend_context context, http_options options) : options_(options) {
  auto t = make_header_table();
  table_ = kj::mv(t.table);
  service_ = kj::heap<service>(*table_, t.authorization, t.cache_control, std::move(context), options_);
  errors_ = kj::heap<error_handler>(*table_);
}

http_frontend::~http_frontend() = default;

kj::Promise<void> http_frontend::listen(kj::AsyncIoContext& io, const cluster::host_port& where,
                                        std::function<void(uint16_t)> on_bound) {
  const std::string address = where.host + ":" + std::to_string(where.port);
  return io.provider->getNetwork()
      .parseAddress(kj::StringPtr(address.c_str()))
      .then([this, &io, on_bound = std::move(on_bound)](kj::Own<kj::NetworkAddress> addr) mutable {
        auto receiver = addr->listen();
        if (on_bound) on_bound(uint16_t(receiver->getPort()));
        kj::HttpServerSettings settings;
        settings.errorHandler = *errors_;
        settings.headerTimeout = options_.header_timeout.count() * kj::MILLISECONDS;
        settings.pipelineTimeout = options_.idle_timeout.count() * kj::MILLISECONDS;
        service_->use_timer(io.provider->getTimer());
        auto server = kj::heap<kj::HttpServer>(io.provider->getTimer(), *table_, *service_, settings);
        server_ = server.get();
        auto connections = kj::heap<connection_cap>(*server, options_.max_connections);
        auto listening = connections->accept_from(*receiver);
        return listening.attach(kj::defer([this]() { server_ = nullptr; }), kj::mv(connections), kj::mv(server),
                                kj::mv(receiver), kj::mv(addr));
      });
}

kj::Promise<void> http_frontend::drain() {
  if (!server_) return kj::READY_NOW;
  return server_->drain();
}

}  // namespace troupe::frontend::http
