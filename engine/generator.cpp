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

  const std::vector<int32_t> stop_ids = stop_ids_of(req, c, tok);
  generation_result out;
  out.prompt_tokens = req.prompt;
  sampler samp(req.sampling);
  // The generated text continues the prompt: a SentencePiece "▁word" keeps its space.
  text_stream text(tok, req.stop.strings, req.skip_special_tokens, req.prompt.empty());
  std::vector<float> logits(size_t(c.vocab_size));

  auto ran = fwd.forward(req.prompt, 0, **kv, logits);
  if (!ran) return ran.err();
  int64_t pos = int64_t(req.prompt.size());
  while (true) {
    sample_result s = samp.sample(logits, req.prompt);
    samp.accept(s.token);
    out.tokens.push_back(s.token);
    const bool stop_token = std::find(stop_ids.begin(), stop_ids.end(), s.token) != stop_ids.end();
    // Text: a stop token adds none; a stop string cuts the text where it begins.
    auto d = text.push(s.token, stop_token);
    const bool stopped = stop_token || d.stop_string;
    // prompt + output never exceeds the context (the last sampled token needs no KV slot).
    const bool at_length = int64_t(out.tokens.size()) >= req.max_tokens || pos + 1 >= capacity;
    if (at_length && !stopped) d.text += text.finish();
    generation_event ev{s.token, std::move(d.text), nullptr};
    if (req.sampling.logprobs >= 0) out.logprobs.push_back(std::move(s));
    ev.sample = req.sampling.logprobs >= 0 ? &out.logprobs.back() : nullptr;
    if (on_event) on_event(ev);
    if (stopped || at_length) out.text = text.text();
    if (stopped) {
      out.finish = finish_reason::stop;
      return out;
    }
    if (at_length) {
      out.finish = finish_reason::length;
      return out;
    }
    const int32_t next = out.tokens.back();
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
  const std::vector<int32_t> stop_ids = stop_ids_of(req, c, tok);
  generation_result out;
  out.prompt_tokens = req.prompt;
  text_stream text(tok, req.stop.strings, req.skip_special_tokens, req.prompt.empty());
  while (engine.has_unfinished()) {
    for (request_output& o : engine.step()) {
      if (o.request != *id) continue;
      if (o.finish == finish_reason::error) return fail(o.error);
      for (size_t i = 0; i < o.tokens.size(); ++i) {
        const int32_t token = o.tokens[i];
        out.tokens.push_back(token);
        const bool stop_token = std::find(stop_ids.begin(), stop_ids.end(), token) != stop_ids.end();
        auto d = text.push(token, stop_token);
        const bool stopped = stop_token || d.stop_string;
        const bool at_length = !stopped && o.finish == finish_reason::length && i + 1 == o.tokens.size();
        if (at_length) d.text += text.finish();
        generation_event ev{token, std::move(d.text), nullptr};
        if (req.sampling.logprobs >= 0 && i < o.logprobs.size()) {
          out.logprobs.push_back(std::move(o.logprobs[i]));
          ev.sample = &out.logprobs.back();
        }
        if (on_event) on_event(ev);
        if (stopped || at_length) {
          out.text = text.text();
          out.finish = stopped ? finish_reason::stop : finish_reason::length;
          if (!o.finish) engine.abort(*id);  // a stop string: the engine would have gone on
          return out;
        }
      }
    }
  }
  return fail("engine: the request ended without a finish");
}

}  // namespace troupe::engine
