// The step loop: plan (scheduler) -> copy-on-write block copies -> one batched forward pass ->
// sampling per sequence -> update (scheduler: forks, finishes, prefix-cache commits) -> outputs.
#include "engine/llm_engine.hpp"

#include <algorithm>
#include <random>

#include "engine/executor/step_batch.hpp"

namespace troupe::engine {

expected<std::unique_ptr<llm_engine>> llm_engine::create(llama_forward& fwd, engine_config config,
                                                         std::vector<int32_t> eos_ids,
                                                         std::unique_ptr<step_executor> executor) {
  const model_config& c = fwd.config();
  if (config.block_size < 1) return fail("engine: block_size must be positive");
  if (config.max_batched_tokens < 1 || config.max_running < 1)
    return fail("engine: max_batched_tokens and max_running must be positive");
  const int64_t bytes_per_block =
      c.n_layers * 2 * int64_t(config.block_size) * c.kv_dim() * int64_t(sizeof(float));
  if (config.kv_memory_fraction < 0 || config.kv_memory_fraction > 1)
    return fail("engine: --kv-memory-fraction must be in (0, 1], got " + std::to_string(config.kv_memory_fraction));
  if (config.kv_memory_fraction > 0) {
    const int64_t available = fwd.available_memory();
    if (available <= 0) return fail("engine: the backend cannot tell its available memory; give --kv-memory in bytes");
    config.kv_memory_bytes = int64_t(double(available) * config.kv_memory_fraction);
  }
  const int64_t num_blocks = config.kv_memory_bytes / bytes_per_block;
  const int64_t blocks_per_context = (c.max_position + config.block_size - 1) / config.block_size;
  if (num_blocks < blocks_per_context) {
    return fail("engine: --kv-memory of " + std::to_string(config.kv_memory_bytes) + " bytes holds " +
                std::to_string(num_blocks) + " blocks of " + std::to_string(config.block_size) +
                " tokens; one sequence of the model's context (" + std::to_string(c.max_position) +
                " tokens) needs " + std::to_string(blocks_per_context) + " (" +
                std::to_string(blocks_per_context * bytes_per_block) + " bytes)");
  }
  if (num_blocks > (int64_t(1) << 30)) return fail("engine: --kv-memory is too large");
  if (!executor) executor = make_local_executor(fwd);
  auto kv = executor->setup(num_blocks, config.block_size);
  if (!kv) return kv.err();
  return std::unique_ptr<llm_engine>(new llm_engine(fwd, std::move(config), std::move(eos_ids), std::move(executor),
                                                    std::move(*kv), int32_t(num_blocks)));
}

// The paged cache goes before the executor (members in reverse), and a group executor's
// destructor then sends the ranks stop.
llm_engine::~llm_engine() = default;

llm_engine::llm_engine(llama_forward& fwd, engine_config config, std::vector<int32_t> eos_ids,
                       std::unique_ptr<step_executor> executor, std::unique_ptr<paged_kv> kv, int32_t num_blocks)
    : fwd_(fwd),
      config_(std::move(config)),
      eos_ids_(std::move(eos_ids)),
      executor_(std::move(executor)),
      kv_(std::move(kv)),
      pool_(num_blocks, config_.block_size),
      cache_(pool_, kv_cache_config{config_.model_revision, config_.prefix_caching}),
      scheduler_(scheduler_config{config_.max_batched_tokens, config_.max_running, fwd.config().max_position},
                 cache_, make_fcfs_priority_policy()) {}

expected<int64_t> llm_engine::add_request(request r) {
  if (auto ok = validate(r.sampling); !ok) return ok.err();
  if (r.resumed < 0 || (r.resumed > 0 && (size_t(r.resumed) >= r.prompt.size() || r.n != 1)))
    return fail("resumed " + std::to_string(r.resumed) + ": a resumed request keeps part of its prompt and has n = 1");
  const int64_t vocab = fwd_.config().vocab_size;
  for (const int32_t t : r.prompt) {
    if (t < 0 || t >= vocab)
      return fail("token id " + std::to_string(t) + " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
  }
  const int64_t id = next_request_++;
  request s = r;
  s.id = id;
  if (!r.stop.ignore_eos) s.stop.token_ids.insert(s.stop.token_ids.end(), eos_ids_.begin(), eos_ids_.end());
  if (auto ok = scheduler_.add_request(std::move(s)); !ok) return ok.err();
  const uint64_t device_seed = r.sampling.seed ? *r.sampling.seed : std::random_device{}();
  requests_.emplace(id, request_state{std::move(r), {}, device_seed});
  return id;
}

void llm_engine::forget(int64_t id) {
  std::erase_if(seqs_, [id](const auto& kv) { return kv.second.request == id; });
  requests_.erase(id);
}

bool llm_engine::abort(int64_t id) {
  if (!scheduler_.abort(id)) return false;
  forget(id);
  aborted_.push_back(id);
  return true;
}

bool llm_engine::has_unfinished() const { return scheduler_.has_unfinished() || !aborted_.empty(); }

void llm_engine::fail_step(const step_plan& plan, const std::string& why, std::vector<request_output>& out) {
  std::vector<int64_t> ids;
  for (const auto& s : plan.seqs) ids.push_back(s.request);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  for (const int64_t id : ids) {
    (void)scheduler_.abort(id);
    forget(id);
    request_output o;
    o.request = id;
    o.finish = finish_reason::error;
    o.error = why;
    out.push_back(std::move(o));
  }
}

void llm_engine::ensure_samplers(request_state& rs) {
  if (!rs.samplers.empty()) return;
  for (int32_t k = 0; k < rs.req.n; ++k) {
    sampling_params p = rs.req.sampling;
    if (p.seed) p.seed = *p.seed + uint64_t(k);
    rs.samplers.emplace_back(p);
    // A resumed request's earlier output is the end of its prompt: the penalties count it as generated.
    const size_t resumed = size_t(std::clamp<int32_t>(rs.req.resumed, 0, int32_t(rs.req.prompt.size())));
    for (size_t i = rs.req.prompt.size() - resumed; i < rs.req.prompt.size(); ++i) rs.samplers.back().accept(rs.req.prompt[i]);
  }
}

bool llm_engine::device_sampling_for(const step_plan& plan, std::vector<device_sampling>& rows,
                                     std::vector<penalty_entry>& penalties) {
  rows.clear();
  penalties.clear();
  for (const scheduled_seq& s : plan.seqs) {
    if (s.num_samples == 0) continue;
    request_state& rs = requests_.at(s.request);
    const sampling_params& p = rs.req.sampling;
    if (s.num_samples > 1 || p.logprobs >= 0) return false;
    const auto it = seqs_.find(s.seq);
    const int32_t sample = it == seqs_.end() ? 0 : it->second.sample;
    ensure_samplers(rs);
    device_sampling d =
        rs.samplers[size_t(sample)].device_rule(rs.req.prompt, int32_t(fwd_.config().vocab_size), penalties);
    d.seed = rs.device_seed + uint64_t(sample);
    // The position of the token drawn: a recomputed step (after preemption) draws the same token.
    d.counter = uint64_t(s.start_pos) + uint64_t(s.tokens.size());
    rows.push_back(d);
  }
  return true;
}

std::vector<request_output> llm_engine::step() {
  const auto started = std::chrono::steady_clock::now();
  std::vector<request_output> out;
  for (const int64_t id : aborted_) {
    request_output o;
    o.request = id;
    o.finish = finish_reason::abort;
    out.push_back(std::move(o));
  }
  aborted_.clear();
  const step_plan plan = scheduler_.schedule();
  if (plan.empty()) return out;

  std::vector<int32_t> logit_rows;
  const step_batch b = batch_of(plan, logit_rows);
  const int64_t vocab = fwd_.config().vocab_size;
  // Sampling on the device when the backend can and every sampling sequence asks only for what
  // it does: then only token ids leave the device, and the logits are never copied out.
  std::vector<device_sampling> device_rows;
  std::vector<penalty_entry> penalties;
  const bool on_device = fwd_.samples_on_device() && device_sampling_for(plan, device_rows, penalties);
  std::vector<int32_t> device_ids(on_device ? logit_rows.size() : 0);
  logits_.resize(on_device ? 0 : logit_rows.size() * size_t(vocab));
  // A group that failed fails every step (the executor says so without running it).
  auto ran = on_device ? executor_->run_sampled(*kv_, b, logit_rows, device_rows, penalties, device_ids)
                       : executor_->run(*kv_, b, logit_rows, logits_);
  if (!ran) {
    fail_step(plan, ran.message(), out);
    return out;
  }

  // Sampling: a sequence's first sample step draws n tokens (sample 0 continues it, the others
  // fork); each sample has its own sampler (seed + sample index when the request is seeded).
  std::vector<seq_output> outputs;
  std::vector<std::vector<sample_result>> results;
  size_t row = 0;
  for (const scheduled_seq& s : plan.seqs) {
    if (s.num_samples == 0) continue;
    const std::span<float> logits = on_device ? std::span<float>()
                                              : std::span<float>(logits_.data() + row * size_t(vocab), size_t(vocab));
    const size_t my_row = row++;
    request_state& rs = requests_.at(s.request);
    auto [it, fresh] = seqs_.try_emplace(s.seq, seq_state{s.request, 0});
    ensure_samplers(rs);
    seq_output o{s.seq, {}};
    std::vector<sample_result> rs_results;
    const std::vector<float> raw = s.num_samples > 1 ? std::vector<float>(logits.begin(), logits.end())
                                                     : std::vector<float>();
    for (int32_t k = 0; k < s.num_samples; ++k) {
      const int32_t sample = s.num_samples > 1 ? k : it->second.sample;
      std::span<float> l = logits;
      std::vector<float> copy;
      if (k > 0) {  // each draw from the same logits (samplers edit them in place)
        copy = raw;
        l = copy;
      }
      sample_result r = on_device ? sample_result{device_ids[my_row], 0.0f, {}}
                                  : rs.samplers[size_t(sample)].sample(
                                        l, rs.req.prompt, uint64_t(s.start_pos) + uint64_t(s.tokens.size()));
      rs.samplers[size_t(sample)].accept(r.token);
      o.tokens.push_back(r.token);
      rs_results.push_back(std::move(r));
    }
    outputs.push_back(std::move(o));
    results.push_back(std::move(rs_results));
  }

  auto updated = scheduler_.update(outputs);
  if (!updated) {
    fail_step(plan, updated.message(), out);
    return out;
  }
  // Forks come in sample order 1, 2, ... for each parent (a parent forks only at its first sample).
  std::unordered_map<seq_id, int32_t> next_sample;
  for (const forked_seq& f : updated->forks)
    seqs_[f.child] = seq_state{f.request, ++next_sample[f.parent]};
  // One output per sample that got a token.
  for (size_t i = 0; i < outputs.size(); ++i) {
    const seq_state& st = seqs_.at(outputs[i].seq);
    const request_state& rs = requests_.at(st.request);
    for (size_t k = 0; k < outputs[i].tokens.size(); ++k) {
      request_output o;
      o.request = st.request;
      o.sample = outputs[i].tokens.size() > 1 ? int32_t(k) : st.sample;
      o.tokens.push_back(outputs[i].tokens[k]);
      if (rs.req.sampling.logprobs >= 0) o.logprobs.push_back(results[i][k]);
      out.push_back(std::move(o));
      ++generated_;
    }
  }
  for (const finished_seq& f : updated->finished) {
    const auto sit = seqs_.find(f.seq);
    const int32_t sample = sit == seqs_.end() ? 0 : sit->second.sample;
    auto match = std::find_if(out.begin(), out.end(), [&f, sample](const request_output& o) {
      return o.request == f.request && o.sample == sample && !o.finish;
    });
    if (match == out.end()) {
      out.push_back(request_output{f.request, sample, {}, {}, std::nullopt, {}});
      match = out.end() - 1;
    }
    match->finish = f.reason;
    if (sit != seqs_.end()) seqs_.erase(sit);
    if (f.request_done) requests_.erase(f.request);
  }
  step_time_ += std::chrono::steady_clock::now() - started;
  return out;
}

engine_stats llm_engine::stats() const {
  engine_stats s;
  s.running = scheduler_.num_running();
  s.waiting = scheduler_.num_waiting();
  s.preemptions = scheduler_.num_preemptions();
  const kv_cache_stats k = cache_.stats();
  s.kv_blocks_used = int32_t(k.blocks_used);
  s.kv_blocks_total = int32_t(k.blocks_total);
  s.kv_capacity_tokens = int64_t(k.blocks_total) * config_.block_size;
  s.prefix_hit_rate = k.hit_rate();
  s.generated_tokens = generated_;
  const double secs = std::chrono::duration<double>(step_time_).count();
  s.tokens_per_s = secs > 0 ? double(generated_) / secs : 0;
  return s;
}

}  // namespace troupe::engine
