// A request's life at the front end (see completion_session.hpp).
#include "frontend/core/completion_session.hpp"

#include <caf/all.hpp>

#include "router/cache_key.hpp"

namespace troupe::frontend {

using namespace cluster;

completion_session::completion_session(const model_frontend& model, request prepared, bool allow_cache, int64_t id,
                                       const router::router_door& door, std::shared_ptr<stream_registry> streams,
                                       cache_policy cache)
    : model_(model),
      request_(std::move(prepared)),
      allow_cache_(allow_cache),
      id_(id),
      door_(door),
      streams_(std::move(streams)),
      cache_(cache) {
  request_.id = id_;
  const int32_t n = std::max(request_.n, 1);
  samples_.reserve(size_t(n));
  for (int32_t i = 0; i < n; ++i)
    // The completion continues the prompt: a SentencePiece "▁word" keeps its space.
    samples_.push_back({engine::text_stream(model_.tokenizer(), request_.stop.strings, request_.skip_special_tokens, false)});
  unfinished_ = n;
}

completion_session::~completion_session() {
  slot_.charge_generated(usage().completion_tokens);  // the tenant's quota pays for what ran
  if (!started_flag_) return;
  streams_->close(id_);
  if (!done_) door_.cancel(id_);
}

void completion_session::start() {
  channel_ = streams_->open(id_);
  started_flag_ = true;
  started_ = std::chrono::steady_clock::now();
  cache_key key;
  if (cache_.enabled && allow_cache_ && router::cacheable(request_, cache_.allow_nondeterministic))
    key = router::make_cache_key(model_.revision(), request_);
  door_.submit(request_, std::move(key));
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
  if (c.finish == finish_reason::error && (c.sample < 0 || c.sample >= samples() || c.tokens.empty())) {
    // A failure of the whole request (no group, refused, group lost).
    u.error = std::move(c.error);
    if (!failed(*u.error)) u.error->code = failure_code::internal;
    return;
  }
  if (c.sample < 0 || c.sample >= samples()) return;
  sample_state& s = samples_[size_t(c.sample)];
  if (s.finished) return;  // ended by a stop string at this end
  choice_delta& d = delta_for(c.sample, deltas);
  const bool engine_stop = c.finish == finish_reason::stop;
  for (size_t i = 0; i < c.tokens.size() && !s.finished; ++i) {
    const int32_t token = c.tokens[i];
    if (token < 0 || token >= model_.tokenizer().vocab_size()) {  // only a corrupt cache entry could
      u.error = failure{failure_code::internal,
                        "token id " + std::to_string(token) + " outside the vocabulary in the stream", {}};
      return;
    }
    // The engine ends a sequence with "stop" on its last token only when that token is eos or a
    // stop id: such a token adds no text.
    const bool stop_token = engine_stop && i + 1 == c.tokens.size();
    auto piece = s.text.push(token, stop_token);
    ++s.tokens;
    d.token_ids.push_back(token);
    if (i < c.logprobs.size() && request_.sampling.logprobs >= 0) {
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
  if (!s.finished && c.finish != finish_reason::none) {
    s.finished = true;
    if (!engine_stop) {
      std::string rest = s.text.finish();
      s.emitted += rest.size();
      d.text += rest;
    }
    switch (c.finish) {
      case finish_reason::stop:
      case finish_reason::length:
      case finish_reason::abort: d.finish_reason = to_string(c.finish); break;
      default: {  // error, or a value off the wire that is none of them
        u.error = std::move(c.error);
        if (!failed(*u.error)) u.error->code = failure_code::internal;
        if (u.error->message.empty()) u.error->message = "the shard group failed";
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
      if (!first_token_) {
        first_token_ = last_token_;
        slot_.started();  // out of the admission queue
      }
    }
    apply(c, u.deltas, u);
    if (u.error) break;
  }
  std::sort(u.deltas.begin(), u.deltas.end(), [](const auto& a, const auto& b) { return a.index < b.index; });
  if (u.error || unfinished_ <= 0) {
    u.done = true;
    // Samples cut by a stop string here may still run at the group: end them there.
    if (!u.error && cut_here_) door_.cancel(id_);
    done_ = true;
    streams_->close(id_);
  }
  return u;
}

usage_counts completion_session::usage() const {
  usage_counts u;
  u.prompt_tokens = int64_t(request_.prompt.size());
  for (const auto& s : samples_) u.completion_tokens += s.tokens;
  return u;
}

}  // namespace troupe::frontend
