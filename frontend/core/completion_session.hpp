// One client request from submission to its last token, on the front end's kj thread: opens its
// stream, submits it to the router actor, and turns each step's token chunks into text deltas per
// sample (incremental detokenization, stop strings held back and cut) with logprobs and finish
// reasons. The HTTP and Cap'n Proto servers write what it returns (through drive_session).
//
// Threading: every method on the kj thread that created the session. Destroying a session that has
// not finished (its client left) cancels the request at the router, which aborts it at its group.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "common/actors.hpp"
#include "engine/text_stream.hpp"
#include "frontend/core/admission.hpp"
#include "frontend/core/model_frontend.hpp"
#include "frontend/core/stream_channel.hpp"
#include "frontend/core/text_delta.hpp"
#include "router/router_door.hpp"

namespace troupe::frontend {

// What the session has learnt since the last poll().
struct session_update {
  std::vector<choice_delta> deltas;  // at most one per sample, in sample order; text may be empty
  std::optional<failure> error;      // the request failed (nothing more follows)
  bool done = false;                 // every sample has finished (or the request failed)
};

// How a node's front ends use the response cache.
struct cache_policy {
  bool enabled = false;                // a cache actor is wired to the router
  bool allow_nondeterministic = false; // cache sampled requests without a seed too
};

class completion_session {
 public:
  // `allow_cache`: the client allows a cached answer (no "cache": false, no no-cache header).
  completion_session(const model_frontend& model, request prepared, bool allow_cache, int64_t id,
                     const router::router_door& door, std::shared_ptr<stream_registry> streams, cache_policy cache = {});
  ~completion_session();
  completion_session(const completion_session&) = delete;
  completion_session& operator=(const completion_session&) = delete;

  // Keeps the request's place in the admission queue until its first token (or its end); at the
  // end the tokens it generated are charged to its tenant's quota.
  void hold(admission::ticket slot) { slot_ = std::move(slot); }
  // Opens the stream and submits the request (with its cache key when the cache may answer it).
  void start();
  // Resolves when poll() has news.
  [[nodiscard]] kj::Promise<void> ready() { return channel_->ready(); }
  [[nodiscard]] session_update poll();

  [[nodiscard]] usage_counts usage() const;
  [[nodiscard]] int32_t samples() const { return int32_t(samples_.size()); }
  [[nodiscard]] bool done() const { return done_; }

  // Timings for the latency metrics (steady clock).
  [[nodiscard]] std::chrono::steady_clock::time_point started() const { return started_; }
  [[nodiscard]] std::optional<std::chrono::steady_clock::time_point> first_token() const { return first_token_; }
  [[nodiscard]] std::chrono::steady_clock::time_point last_token() const { return last_token_; }

 private:
  struct sample_state {
    engine::text_stream text;
    int64_t tokens = 0;       // generated tokens counted in usage
    size_t emitted = 0;       // bytes of text sent (completions text_offset)
    bool finished = false;
  };
  void apply(cluster::token_chunk& c, std::vector<choice_delta>& deltas, session_update& u);
  [[nodiscard]] choice_delta& delta_for(int32_t sample, std::vector<choice_delta>& deltas);

  const model_frontend& model_;
  request request_;
  bool allow_cache_ = true;
  int64_t id_;
  const router::router_door& door_;
  admission::ticket slot_;
  std::shared_ptr<stream_registry> streams_;
  std::shared_ptr<stream_channel> channel_;
  cache_policy cache_;
  std::vector<sample_state> samples_;
  int32_t unfinished_ = 0;
  bool started_flag_ = false;
  bool done_ = false;
  bool cut_here_ = false;  // a stop string ended a sample here: the group may still be running it
  std::chrono::steady_clock::time_point started_;
  std::optional<std::chrono::steady_clock::time_point> first_token_;
  std::chrono::steady_clock::time_point last_token_;
};

}  // namespace troupe::frontend
