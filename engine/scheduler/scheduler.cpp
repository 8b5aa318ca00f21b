// The continuous-batching scheduler (see scheduler.hpp for the policy and the protocol).
#include "engine/scheduler/scheduler.hpp"

#include <algorithm>
#include <cassert>
#include <limits>
#include <string>

namespace troupe::engine {

scheduler::scheduler(scheduler_config config, kv_cache_manager& kv, std::unique_ptr<scheduling_policy> policy)
    : config_(config), kv_(kv), policy_(std::move(policy)) {
  assert(config_.max_batched_tokens >= 1 && config_.max_running >= 1 && policy_);
}

bool scheduler::before(seq_id a, seq_id b) const {
  return policy_->before(rank(seqs_.at(a)), rank(seqs_.at(b)));
}

void scheduler::insert_waiting(seq_id id) {
  const auto at = std::upper_bound(waiting_.begin(), waiting_.end(), id,
                                   [this](seq_id x, seq_id y) { return before(x, y); });
  waiting_.insert(at, id);
}

void scheduler::remove_running(seq_id id) {
  running_.erase(std::remove(running_.begin(), running_.end(), id), running_.end());
}

int32_t scheduler::running_fan_out() const {
  int32_t n = 0;
  for (seq_id id : running_) n += seqs_.at(id).fan_out;
  return n;
}

std::span<const int32_t> scheduler::seq_tokens(seq_id seq) const {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return {};
  return it->second.tokens;
}

int64_t scheduler::seq_computed(seq_id seq) const {
  auto it = seqs_.find(seq);
  return it == seqs_.end() ? 0 : it->second.computed;
}

expected<void> scheduler::add_request(request r) {
  const std::string who = "request " + std::to_string(r.id) + ": ";
  if (r.prompt.empty()) return fail(who + "empty prompt");
  if (r.max_tokens < 1) return fail(who + "max_tokens must be >= 1, got " + std::to_string(r.max_tokens));
  if (r.n < 1) return fail(who + "n must be >= 1, got " + std::to_string(r.n));
  if (requests_.count(r.id)) return fail(who + "duplicate request id");
  const int64_t len = int64_t(r.prompt.size()) + r.max_tokens;
  if (len > config_.max_model_len)
    return fail(who + "prompt (" + std::to_string(r.prompt.size()) + " tokens) + max_tokens (" +
                std::to_string(r.max_tokens) + ") = " + std::to_string(len) + " exceeds the context length " +
                std::to_string(config_.max_model_len));
  const int64_t bs = kv_.block_size();
  const int64_t blocks = (len + bs - 1) / bs;
  if (blocks > kv_.pool().num_blocks())
    return fail(who + "prompt (" + std::to_string(r.prompt.size()) + " tokens) + max_tokens (" +
                std::to_string(r.max_tokens) + ") needs " + std::to_string(blocks) + " KV blocks of " +
                std::to_string(bs) + " tokens, the whole cache has " + std::to_string(kv_.pool().num_blocks()));
  if (r.n > config_.max_running)
    return fail(who + "n = " + std::to_string(r.n) + " exceeds max_running " + std::to_string(config_.max_running));

  sequence s;
  s.id = next_seq_++;
  s.request = r.id;
  s.priority = r.priority;
  s.arrival = next_arrival_++;
  s.tokens = r.prompt;
  s.prompt_len = int64_t(r.prompt.size());
  s.fan_out = r.n;
  const seq_id id = s.id;
  seqs_.emplace(id, std::move(s));
  requests_.emplace(r.id, request_state{std::move(r), 1});
  insert_waiting(id);
  return {};
}

bool scheduler::abort(request_id id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return false;
  std::vector<seq_id> mine;
  for (const auto& [sid, s] : seqs_)
    if (s.request == id) mine.push_back(sid);
  for (seq_id sid : mine) {
    kv_.free(sid);
    remove_running(sid);
    waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), sid), waiting_.end());
    seqs_.erase(sid);
  }
  requests_.erase(it);
  pending_aborted_.push_back(id);
  return true;
}

step_plan scheduler::schedule() {
  step_plan plan;
  plan.aborted = std::move(pending_aborted_);
  pending_aborted_.clear();
  last_plan_.clear();

  struct entry {
    seq_id seq;
    int64_t start;
    int64_t n;
    std::vector<block_copy> copies;
  };
  std::vector<entry> entries;
  int64_t budget = config_.max_batched_tokens;

  // Running sequences: decodes first, then unfinished prefills, each in policy order.
  std::vector<seq_id> order = running_;
  std::sort(order.begin(), order.end(), [this](seq_id a, seq_id b) { return before(a, b); });
  std::stable_partition(order.begin(), order.end(), [this](seq_id id) {
    const sequence& s = seqs_.at(id);
    return int64_t(s.tokens.size()) - s.computed == 1;
  });

  auto preempt = [this, &plan, &entries, &budget](seq_id victim) {
    auto e = std::find_if(entries.begin(), entries.end(), [victim](const entry& x) { return x.seq == victim; });
    if (e != entries.end()) {  // planned earlier this step: take it back
      budget += e->n;
      entries.erase(e);
    }
    kv_.free(victim);
    seqs_.at(victim).computed = 0;
    remove_running(victim);
    insert_waiting(victim);
    plan.preempted.push_back(victim);
    ++num_preemptions_;
  };

  bool pool_short = false;  // a running sequence had to preempt for blocks this step
  auto plan_running = [this, &entries, &budget, &preempt, &pool_short](seq_id id) {
    if (budget <= 0) return;
    if (std::find(running_.begin(), running_.end(), id) == running_.end()) return;  // preempted
    const sequence& s = seqs_.at(id);
    const int64_t n = std::min<int64_t>(int64_t(s.tokens.size()) - s.computed, budget);
    while (true) {
      allocation a = kv_.allocate_slots(id, n);
      if (a) {
        entries.push_back({id, s.computed, n, std::move(a.copies)});
        budget -= n;
        return;
      }
      const seq_id victim = *std::max_element(running_.begin(), running_.end(),
                                              [this](seq_id x, seq_id y) { return before(x, y); });
      preempt(victim);
      pool_short = true;
      if (victim == id) return;
    }
  };

  // Waiting requests, in policy order, while the budget, the batch size and the pool allow, and
  // while their class is `up_to` or better; none in a step that had to preempt for
  // blocks (the pool is short already). Returns how many started.
  int32_t fan_out = 0;
  auto admit_waiting = [this, &entries, &budget, &fan_out, &preempt, &pool_short](int32_t up_to) {
    int32_t admitted = 0;
    fan_out = running_fan_out();
    while (!pool_short && budget > 0 && !waiting_.empty()) {
      const seq_id id = waiting_.front();
      sequence& s = seqs_.at(id);
      if (s.priority > up_to) break;
      if (fan_out + s.fan_out > config_.max_running) {
        // The batch is full. A waiting sequence of a better priority class (the router favours the
        // least-served tenant so) takes the place of the last running one of a worse class, which
        // waits and is recomputed later, as after a preemption for blocks. Within a class, none.
        if (running_.empty()) break;
        const seq_id victim = *std::max_element(running_.begin(), running_.end(),
                                                [this](seq_id x, seq_id y) { return before(x, y); });
        if (seqs_.at(victim).priority <= s.priority) break;
        preempt(victim);
        fan_out = running_fan_out();
        continue;
      }
      const prefix_match match = kv_.find_cached_prefix(s.tokens);
      const int64_t n = std::min<int64_t>(int64_t(s.tokens.size()) - match.num_tokens, budget);
      allocation a = kv_.allocate_slots(id, n, &match);
      if (!a) break;
      s.computed = kv_.num_slots(id) - n;
      entries.push_back({id, s.computed, n, std::move(a.copies)});
      budget -= n;
      fan_out += s.fan_out;
      waiting_.erase(waiting_.begin());
      running_.push_back(id);
      ++admitted;
    }
    return admitted;
  };

  // Every decode first (one token each). Then the prefill chunks of running sequences of the best
  // waiting class or better, then that class's waiting sequences, and only then the chunks of worse
  // classes: otherwise a favoured request waits for the chunks (and recomputes) of the class it is
  // favoured over, which under overload fill the step's token budget step after step. A step that
  // starts a better class's sequence carries nothing of the worse classes but their decodes: its
  // time is the favoured request's time to first token. With one class all this is FCFS as before.
  const int32_t best = waiting_.empty() ? std::numeric_limits<int32_t>::max() : seqs_.at(waiting_.front()).priority;
  bool worse_present = !waiting_.empty() && seqs_.at(waiting_.back()).priority > best;
  std::vector<seq_id> deferred;  // running prefills of a class worse than the best waiting one
  for (seq_id id : order) {
    const sequence& s = seqs_.at(id);
    worse_present |= s.priority > best;
    if (int64_t(s.tokens.size()) - s.computed > 1 && s.priority > best)
      deferred.push_back(id);
    else
      plan_running(id);
  }
  const bool favoured_step = admit_waiting(best) > 0 && worse_present;
  if (!favoured_step) {
    for (seq_id id : deferred) plan_running(id);
    admit_waiting(std::numeric_limits<int32_t>::max());
  }

  for (entry& e : entries) {
    const sequence& s = seqs_.at(e.seq);
    scheduled_seq out;
    out.seq = e.seq;
    out.request = s.request;
    out.start_pos = e.start;
    out.tokens.assign(s.tokens.begin() + e.start, s.tokens.begin() + e.start + e.n);
    const auto table = kv_.block_table(e.seq);
    out.block_table.assign(table.begin(), table.end());
    out.num_samples = e.start + e.n == int64_t(s.tokens.size()) ? s.fan_out : 0;
    plan.copies.insert(plan.copies.end(), e.copies.begin(), e.copies.end());
    plan.num_tokens += e.n;
    last_plan_.push_back({e.seq, e.n, out.num_samples});
    plan.seqs.push_back(std::move(out));
  }
  return plan;
}

void scheduler::finish(sequence& s, finish_reason reason, update_result& out) {
  finished_seq f;
  f.seq = s.id;
  f.request = s.request;
  f.reason = reason;
  f.generated.assign(s.tokens.begin() + s.prompt_len, s.tokens.end());
  kv_.free(s.id);
  remove_running(s.id);
  auto r = requests_.find(s.request);
  if (r != requests_.end() && --r->second.live == 0) {
    f.request_done = true;
    requests_.erase(r);
  }
  out.finished.push_back(std::move(f));
  seqs_.erase(s.id);  // s dangles from here
}

expected<update_result> scheduler::update(std::span<const seq_output> outputs) {
  std::unordered_map<seq_id, const seq_output*> by_seq;
  for (const seq_output& o : outputs) by_seq[o.seq] = &o;
  for (const planned& p : last_plan_) {
    if (p.num_samples == 0 || !seqs_.count(p.seq)) continue;
    auto it = by_seq.find(p.seq);
    const size_t got = it == by_seq.end() ? 0 : it->second->tokens.size();
    if (got != size_t(p.num_samples))
      return fail("scheduler: update: sequence " + std::to_string(p.seq) + " needs " +
                  std::to_string(p.num_samples) + " sampled tokens, got " + std::to_string(got));
  }

  update_result out;
  const std::vector<planned> plan = std::move(last_plan_);
  last_plan_.clear();
  for (const planned& p : plan) {
    auto sit = seqs_.find(p.seq);
    if (sit == seqs_.end()) continue;  // aborted after schedule()
    sequence& s = sit->second;
    s.computed += p.num_tokens;
    std::vector<seq_id> touched{s.id};
    if (p.num_samples > 0) {
      const std::vector<int32_t>& sampled = by_seq.at(p.seq)->tokens;
      // Commit the shared prefix before forking, so the forks inherit its cache chain.
      auto committed = kv_.commit_full_blocks(s.id, std::span<const int32_t>(s.tokens).first(size_t(s.computed)));
      if (!committed) return committed.err();
      request_state& rs = requests_.at(s.request);
      for (size_t i = 1; i < sampled.size(); ++i) {
        sequence child;
        child.id = next_seq_++;
        child.request = s.request;
        child.priority = s.priority;
        child.arrival = s.arrival;
        child.tokens = s.tokens;
        child.tokens.push_back(sampled[i]);
        child.prompt_len = s.prompt_len;
        child.computed = s.computed;
        auto forked = kv_.fork(s.id, child.id);
        if (!forked) return forked.err();
        out.forks.push_back({s.request, s.id, child.id});
        touched.push_back(child.id);
        running_.push_back(child.id);
        ++rs.live;
        seqs_.emplace(child.id, std::move(child));
      }
      s.tokens.push_back(sampled[0]);
      s.fan_out = 1;
    } else {
      auto committed = kv_.commit_full_blocks(s.id, std::span<const int32_t>(s.tokens).first(size_t(s.computed)));
      if (!committed) return committed.err();
    }
    if (p.num_samples == 0) continue;  // a prefill chunk short of the end: nothing sampled
    for (seq_id id : touched) {
      sequence& t = seqs_.at(id);
      const request& req = requests_.at(t.request).req;
      const int32_t last = t.tokens.back();
      const int64_t generated = int64_t(t.tokens.size()) - t.prompt_len;
      if (generated > 0 && std::find(req.stop.token_ids.begin(), req.stop.token_ids.end(), last) !=
                               req.stop.token_ids.end())
        finish(t, finish_reason::stop, out);
      else if (generated >= req.max_tokens || int64_t(t.tokens.size()) >= config_.max_model_len)
        finish(t, finish_reason::length, out);
    }
  }
  return out;
}

}  // namespace troupe::engine
