// A request's life at the front end (see completion_session.hpp).
#include "router/completion_session.hpp"

#include <caf/all.hpp>

#include "router/cache_key.hpp"

namespace troupe::router {

using namespace cluster;

completion_session::completion_session(const model_frontend& model, prepared_request prepared, int64_t id,
                                       router_actor router, std::shared_ptr<stream_registry> streams,
                                       cache_policy cache)
    : model_(model),
      prepared_(std::move(prepared)),
      id_(id),
      router_(std::move(router)),
      streams_(std::move(streams)),
      cache_(cache) {
  prepared_.request.id = id_;
  const int32_t n = std::max(prepared_.request.n, 1);
  samples_.reserve(size_t(n));
  for (int32_t i = 0; i < n; ++i)
    // The completion continues the prompt: a SentencePiece "▁word" keeps its space.
    samples_.push_back({engine::text_stream(model_.tokenizer(), prepared_.stop, prepared_.skip_special_tokens, false)});
  unfinished_ = n;
}

completion_session::~completion_session() {
  if (!started_flag_) return;
  streams_->close(id_);
  if (!done_) caf::anon_send(router_, cancel_atom::value, id_);
}

void completion_session::start() {
  channel_ = streams_->open(id_);
  started_flag_ = true;
  started_ = std::chrono::steady_clock::now();
  cache_key key;
  if (cache_.enabled && prepared_.cache && cacheable(prepared_.request, cache_.allow_nondeterministic))
    key = make_cache_key(model_.revision(), prepared_.request, prepared_.stop, prepared_.skip_special_tokens);
  caf::anon_send(router_, submit_atom::value, prepared_.request, std::move(key));
}

choice_delta& completion_session::delta_for(int32_t sample, std::vector<choice_delta>& deltas) {
  for (auto& d : deltas)
    if (d.index == sample) return d;
  choice_delta d;
  d.index = sample;
  d.text_offset = samples_[size_t(sample)].emitted;
  deltas.push_back(std::move(d));
  return deltas.back();
}

void completion_session::apply(token_chunk& c, std::vector<choice_delta>& deltas, session_update& u) {
  if (c.finish == int8_t(finish_kind::error) && (c.sample < 0 || c.sample >= samples() || c.tokens.empty())) {
    // A failure of the whole request (no group, refused, group lost).
    const int status = c.status ? c.status : 500;
    u.error = api_error{status, c.error, status == 400 ? "invalid_request_error" : "server_error", {}, {}};
    return;
  }
  if (c.sample < 0 || c.sample >= samples()) return;
  sample_state& s = samples_[size_t(c.sample)];
  if (s.finished) return;  // ended by a stop string at this end
  choice_delta& d = delta_for(c.sample, deltas);
  const bool engine_stop = c.finish == int8_t(finish_kind::stop);
  for (size_t i = 0; i < c.tokens.size() && !s.finished; ++i) {
    const int32_t token = c.tokens[i];
    if (token < 0 || token >= model_.tokenizer().vocab_size()) {  // only a corrupt cache entry could
      u.error = api_error{500, "token id " + std::to_string(token) + " outside the vocabulary in the stream",
                          "server_error", {}, {}};
      return;
    }
    // The engine ends a sequence with "stop" on its last token only when that token is eos or a
    // stop id: such a token adds no text.
    const bool stop_token = engine_stop && i + 1 == c.tokens.size();
    auto piece = s.text.push(token, stop_token);
    ++s.tokens;
    d.token_ids.push_back(token);
    if (i < c.logprobs.size() && prepared_.request.logprobs >= 0) {
      const auto& lp = c.logprobs[i];
      token_logprob_text t{model_.tokenizer().token_bytes(lp.token), lp.logprob, {}};
      for (size_t k = 0; k < lp.top_tokens.size() && k < lp.top_logprobs.size(); ++k)
        t.top.push_back({model_.tokenizer().token_bytes(lp.top_tokens[k]), lp.top_logprobs[k]});
      d.logprobs.push_back(std::move(t));
    }
    d.text += piece.text;
    s.emitted += piece.text.size();
    if (piece.stop_string) {
      s.finished = true;
      cut_here_ = true;
      d.finish_reason = "stop";
    }
  }
  if (!s.finished && c.finish >= 0) {
    s.finished = true;
    if (!engine_stop) {
      std::string rest = s.text.finish();
      s.emitted += rest.size();
      d.text += rest;
    }
    switch (finish_kind(c.finish)) {
      case finish_kind::stop: d.finish_reason = "stop"; break;
      case finish_kind::length: d.finish_reason = "length"; break;
      case finish_kind::abort: d.finish_reason = "abort"; break;
      case finish_kind::error:
      case finish_kind::none: {
        const int status = c.status ? c.status : 500;
        u.error = api_error{status, c.error.empty() ? "the shard group failed" : c.error, "server_error", {}, {}};
        return;
      }
    }
  }
  if (s.finished) --unfinished_;
}

session_update completion_session::poll() {
  session_update u;
  if (done_) {
    u.done = true;
    return u;
  }
  auto chunks = channel_->drain();
  for (auto& c : chunks) {
    if (!c.tokens.empty()) {
      last_token_ = std::chrono::steady_clock::now();
      if (!first_token_) first_token_ = last_token_;
    }
    apply(c, u.deltas, u);
    if (u.error) break;
  }
  std::sort(u.deltas.begin(), u.deltas.end(), [](const auto& a, const auto& b) { return a.index < b.index; });
  if (u.error || unfinished_ <= 0) {
    u.done = true;
    // Samples cut by a stop string here may still run at the group: end them there.
    if (!u.error && cut_here_) caf::anon_send(router_, cancel_atom::value, id_);
    done_ = true;
    streams_->close(id_);
  }
  return u;
}

usage_counts completion_session::usage() const {
  usage_counts u;
  u.prompt_tokens = int64_t(prepared_.request.prompt.size());
  for (const auto& s : samples_) u.completion_tokens += s.tokens;
  return u;
}

}  // namespace troupe::router
