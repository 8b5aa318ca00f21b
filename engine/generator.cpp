// The single-sequence generation loop and request validation.
#include "engine/generator.hpp"

#include <algorithm>

#include "engine/text_stream.hpp"

namespace troupe::engine {
namespace {

// The ids that end a sample: the request's, and unless it ignores eos, the config's and the
// tokenizer's eos ids.
std::vector<int32_t> stop_ids_of(const request& req, const model_config& c, const tokenizer& tok) {
  std::vector<int32_t> ids = req.stop.token_ids;
  if (!req.stop.ignore_eos) {
    ids.insert(ids.end(), c.eos_token_ids.begin(), c.eos_token_ids.end());
    const auto& eos = tok.specials().eos_ids;
    ids.insert(ids.end(), eos.begin(), eos.end());
  }
  return ids;
}

// What both generation loops do with each sampled token: the result's tokens, text (a stop token
// adds none; a stop string cuts the text where it begins), logprobs and finish, and the event.
class result_builder {
 public:
  result_builder(const request& req, const model_config& c, const tokenizer& tok,
                 const std::function<void(const generation_event&)>& on_event)
      : req_(req),
        stop_ids_(stop_ids_of(req, c, tok)),
        // The generated text continues the prompt: a SentencePiece "▁word" keeps its space.
        text_(tok, req.stop.strings, req.skip_special_tokens, req.prompt.empty()),
        on_event_(on_event) {
    out_.prompt_tokens = req.prompt;
  }

  // Adds a token; `at_length` when it is the last one the limits allow. True when the generation
  // has ended (result() is then complete).
  bool add(sample_result s, bool at_length) {
    out_.tokens.push_back(s.token);
    const bool stop_token = std::find(stop_ids_.begin(), stop_ids_.end(), s.token) != stop_ids_.end();
    auto d = text_.push(s.token, stop_token);
    const bool stopped = stop_token || d.stop_string;
    if (at_length && !stopped) d.text += text_.finish();
    generation_event ev{s.token, std::move(d.text), nullptr};
    if (req_.sampling.logprobs >= 0) {
      out_.logprobs.push_back(std::move(s));
      ev.sample = &out_.logprobs.back();
    }
    if (on_event_) on_event_(ev);
    if (!stopped && !at_length) return false;
    out_.text = text_.text();
    out_.finish = stopped ? finish_reason::stop : finish_reason::length;
    return true;
  }

  [[nodiscard]] generation_result& result() { return out_; }

 private:
  const request& req_;
  const std::vector<int32_t> stop_ids_;
  text_stream text_;
  const std::function<void(const generation_event&)>& on_event_;
  generation_result out_;
};

}  // namespace

expected<void> validate(const request& r, const model_config& c) {
  if (r.prompt.empty()) return fail("the prompt is empty: at least one token is needed");
  for (int32_t t : r.prompt)
    if (t < 0 || t >= c.vocab_size)
      return fail("prompt token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                  std::to_string(c.vocab_size) + ")");
  if (int64_t(r.prompt.size()) >= c.max_position)
    return fail("the prompt has " + std::to_string(r.prompt.size()) + " tokens; this model's context length is " +
                std::to_string(c.max_position) + " tokens, and at least one must be left to generate");
  if (r.max_tokens < 1) return fail("max_tokens must be at least 1, got " + std::to_string(r.max_tokens));
  for (int32_t t : r.stop.token_ids)
    if (t < 0 || t >= c.vocab_size)
      return fail("stop token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                  std::to_string(c.vocab_size) + ")");
  return validate(r.sampling);
}

expected<generation_result> generate(llama_forward& fwd, const tokenizer& tok, const request& req,
                                     const std::function<void(const generation_event&)>& on_event) {
  const model_config& c = fwd.config();
  if (auto ok = validate(req, c); !ok) return ok.err();

  const int64_t capacity = std::min<int64_t>(int64_t(req.prompt.size()) + req.max_tokens, c.max_position);
  auto kv = fwd.new_kv(capacity);
  if (!kv) return kv.err();

  result_builder out(req, c, tok, on_event);
  sampler samp(req.sampling);
  std::vector<float> logits(size_t(c.vocab_size));

  auto ran = fwd.forward(req.prompt, 0, **kv, logits);
  if (!ran) return ran.err();
  int64_t pos = int64_t(req.prompt.size());
  while (true) {
    sample_result s = samp.sample(logits, req.prompt, uint64_t(pos));
    samp.accept(s.token);
    const int32_t next = s.token;
    // prompt + output never exceeds the context (the last sampled token needs no KV slot).
    const bool at_length = int64_t(out.result().tokens.size()) + 1 >= req.max_tokens || pos + 1 >= capacity;
    if (out.add(std::move(s), at_length)) return std::move(out.result());
    ran = fwd.forward(std::span<const int32_t>(&next, 1), pos, **kv, logits);
    if (!ran) return ran.err();
    ++pos;
  }
}

expected<generation_result> generate(llm_engine& engine, const model_config& c, const tokenizer& tok,
                                     const request& req,
                                     const std::function<void(const generation_event&)>& on_event) {
  if (auto ok = validate(req, c); !ok) return ok.err();
  request r = req;
  // The engine refuses prompt + max_tokens beyond the context; generate() stops there instead.
  r.max_tokens = int32_t(std::min<int64_t>(r.max_tokens, c.max_position - int64_t(r.prompt.size())));
  r.n = 1;
  auto id = engine.add_request(r);
  if (!id) return id.err();
  result_builder out(req, c, tok, on_event);
  while (engine.has_unfinished()) {
    for (request_output& o : engine.step()) {
      if (o.request != *id) continue;
      if (o.finish == finish_reason::error) return fail(o.error);
      for (size_t i = 0; i < o.tokens.size(); ++i) {
        sample_result s = i < o.logprobs.size() ? std::move(o.logprobs[i]) : sample_result{o.tokens[i], 0, {}};
        const bool at_length = o.finish == finish_reason::length && i + 1 == o.tokens.size();
        if (out.add(std::move(s), at_length)) {
          if (!o.finish) (void)engine.abort(*id);  // a stop string: the engine would have gone on
          return std::move(out.result());
        }
      }
    }
  }
  return fail("engine: the request ended without a finish");
}

}  // namespace troupe::engine
