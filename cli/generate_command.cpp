// `troupe generate (--model PATH | --connect HOST:PORT [--api-key K]) (--prompt TEXT | --prompt-tokens
// 1,2,3 | --chat TEXT [--system TEXT]) ...`: one generation on the CPU engine, or on a cluster over
// its Cap'n Proto API, streamed to the terminal, or one JSON object with --json. --chat renders the
// model's own chat template with the generation prompt.
#include <charconv>
#include <random>
#include <thread>
#include <cstdio>
#include <memory>

#include "cli/commands.hpp"
#include "client/client.hpp"
#include "common/cluster_config.hpp"
#include "common/json_output.hpp"
#include "engine/chat/chat_template.hpp"
#include "engine/make_backend.hpp"
#include "engine/generator.hpp"
#include "engine/model_tokenizer.hpp"
#include "engine/executor/rank.hpp"
#include "engine/parallel/rendezvous_store.hpp"

namespace troupe::cli {

namespace {

struct generate_options {
  std::string model, prompt, prompt_tokens, chat, system;
  std::string connect, api_key;  // --connect: the cluster's Cap'n Proto API instead of a local model
  request req;
  uint64_t seed = 0;
  int threads = 0;
  int tp = 1;  // ranks of a tensor-parallel shard group (threads, Gloo over loopback)
  std::string device = "cpu";
  bool json = false;
  bool keep_special = false;
  bool no_mmap = false;
};

// "1,2,3" -> ids; the error names the bad element.
expected<std::vector<int32_t>> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t end = std::min(s.find(',', start), s.size());
    const std::string_view item(s.data() + start, end - start);
    int32_t v = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || p != item.data() + item.size())
      return fail("--prompt-tokens: '" + std::string(item) + "' is not a token id (expected e.g. 1,2,3)");
    ids.push_back(v);
    start = end + 1;
  }
  return ids;
}

// The prompt text of a one-turn chat: the model's template rendered for [system,] user, with the
// generation prompt, and bos/eos as the template names them.
expected<std::string> chat_prompt(const engine::tokenizer& tok, const generate_options& o) {
  if (tok.chat_template().empty())
    return fail("--chat: the model has no chat template (tokenizer_config.json chat_template or "
                "GGUF tokenizer.chat_template)");
  auto tmpl = engine::chat::chat_template::parse(tok.chat_template());
  if (!tmpl) return fail("--chat: " + tmpl.message());
  std::vector<engine::chat::chat_message> messages;
  if (!o.system.empty()) messages.push_back({"system", o.system});
  messages.push_back({"user", o.chat});
  engine::chat::render_options options;
  if (tok.specials().bos) options.bos_token = tok.token_bytes(*tok.specials().bos);
  if (tok.specials().eos) options.eos_token = tok.token_bytes(*tok.specials().eos);
  options.add_generation_prompt = true;
  auto text = engine::chat::render_chat(*tmpl, messages, options);
  if (!text) return fail("--chat: " + text.message());
  return text;
}

std::string logprobs_json(const std::vector<engine::sample_result>& lp) {
  std::string s = "[";
  for (size_t i = 0; i < lp.size(); ++i) {
    if (i) s += ',';
    s += std::string("{\"token\":") + std::to_string(lp[i].token) +
         ",\"logprob\":" + json_number(lp[i].logprob) + ",\"top\":[";
    for (size_t j = 0; j < lp[i].top.size(); ++j) {
      if (j) s += ',';
      s += std::string("{\"token\":") + std::to_string(lp[i].top[j].token) +
           ",\"logprob\":" + json_number(lp[i].top[j].logprob) + "}";
    }
    s += "]}";
  }
  return s + "]";
}

// --tp N: a shard group of N ranks as threads of this process (engine::make_rank: Gloo over
// loopback on the CPU; with --device cuda, one GPU per rank and NCCL), run as serving runs one:
// rank 0's continuous-batching engine plans and samples, its shard group executor broadcasts each
// step, and ranks 1..N-1 run it on their shards (engine::run_follower_rank).
expected<engine::generation_result> generate_tensor_parallel(
    const std::shared_ptr<const engine::model>& m, const engine::tokenizer& tok, generate_options& o,
    const std::function<void(const engine::generation_event&)>& stream) {
  if (o.tp < 1 || o.tp > 64) return fail("--tp " + std::to_string(o.tp) + ": give 1 to 64 ranks");
  engine::rank_options ro;
  ro.model = m;
  ro.tp = o.tp;
  ro.group = "generate";
  ro.device = o.device;
  ro.threads = std::max(1, (o.threads > 0 ? o.threads : int(std::thread::hardware_concurrency())) / o.tp);
  ro.max_tokens = 256;
  auto store = engine::parallel::make_memory_store();
  std::vector<expected<void>> followers(size_t(o.tp), expected<void>{});
  std::vector<std::thread> ranks;
  for (int rank = 1; rank < o.tp; ++rank)
    ranks.emplace_back([&followers, &store, ro, rank]() mutable {
      ro.rank = rank;
      followers[size_t(rank)] = engine::run_follower_rank(*store, ro);
    });
  expected<engine::generation_result> result = error{};
  {
    auto r0 = engine::make_rank(*store, ro);  // joins when every rank has
    if (!r0) {
      result = r0.err();
    } else {
      auto executor = engine::make_group_executor(*r0->forward, *r0->control);
      if (!executor) return executor.err();
      std::vector<int32_t> eos = m->config.eos_token_ids;
      for (int32_t id : tok.specials().eos_ids) eos.push_back(id);
      engine::engine_config cfg;
      cfg.max_batched_tokens = ro.max_tokens;
      cfg.max_running = 1;
      // One sequence of the whole context, on every rank (each rank's blocks hold its kv heads).
      const auto& c = m->config;
      cfg.kv_memory_bytes = ((c.max_position + cfg.block_size - 1) / cfg.block_size) * c.n_layers * 2 *
                            int64_t(cfg.block_size) * c.kv_dim() * int64_t(sizeof(float));
      auto eng = engine::llm_engine::create(*r0->forward, cfg, std::move(eos), std::move(*executor));
      result = eng ? engine::generate(**eng, c, tok, o.req, stream) : expected<engine::generation_result>(eng.err());
    }  // the engine's executor sends the ranks stop here; a failed rank 0 leaves them to their timeout
  }
  for (auto& t : ranks) t.join();
  // Every failed rank's error (make_rank's errors name the rank): when one rank fails at its
  // device, the others fail only to connect the group, and which of them ends first is timing.
  std::string failures = result ? "" : result.message();
  for (int rank = 1; rank < o.tp; ++rank)
    if (!followers[size_t(rank)]) failures += (failures.empty() ? "" : "; ") + followers[size_t(rank)].message();
  if (!failures.empty()) return fail(failures);
  return result;
}

int run(generate_options& o, bool seed_given) {
  auto m = engine::load_model(o.model, o.no_mmap ? engine::load_mode::read : engine::load_mode::map);
  if (!m) return std::fprintf(stderr, "error: %s\n", m.message().c_str()), 1;
  auto tok = engine::load_tokenizer_for(**m);
  if (!tok) return std::fprintf(stderr, "error: %s\n", tok.message().c_str()), 1;
  if (!o.prompt_tokens.empty()) {
    auto ids = parse_ids(o.prompt_tokens);
    if (!ids) return std::fprintf(stderr, "error: %s\n", ids.message().c_str()), 2;
    o.req.prompt = std::move(*ids);
  } else if (!o.chat.empty()) {
    auto text = chat_prompt(**tok, o);
    if (!text) return std::fprintf(stderr, "error: %s\n", text.message().c_str()), 2;
    // The template writes bos itself (as transformers' apply_chat_template does, nothing is added).
    o.req.prompt = (*tok)->encode(*text, false);
  } else {
    o.req.prompt = (*tok)->encode(o.prompt);
  }
  if (seed_given) o.req.sampling.seed = o.seed;
  o.req.skip_special_tokens = !o.keep_special;
  if (auto ok = engine::validate(o.req, (*m)->config); !ok)
    return std::fprintf(stderr, "error: %s\n", ok.message().c_str()), 2;

  std::function<void(const engine::generation_event&)> stream;
  if (!o.json) {
    stream = [](const engine::generation_event& ev) {
      std::fwrite(ev.text_delta.data(), 1, ev.text_delta.size(), stdout);
      std::fflush(stdout);
    };
  }
  expected<engine::generation_result> r = error{};
  if (o.tp == 1) {
    auto be = engine::make_backend(o.device, o.threads);
    if (!be) return std::fprintf(stderr, "error: %s\n", be.message().c_str()), 1;
    auto fwd = engine::llama_forward::create(*m, **be, 256);
    if (!fwd) return std::fprintf(stderr, "error: %s\n", fwd.message().c_str()), 1;
    r = engine::generate(**fwd, **tok, o.req, stream);
  } else {
    r = generate_tensor_parallel(*m, **tok, o, stream);
  }
  if (!r) return std::fprintf(stderr, "\nerror: %s\n", r.message().c_str()), 1;
  if (o.json) {
    std::string out = "{\"prompt_tokens\":" + json_int_array(r->prompt_tokens) + ",\"tokens\":" +
                      json_int_array(r->tokens) + ",\"text\":" + json_string(r->text) +
                      ",\"logprobs\":" + logprobs_json(r->logprobs) + ",\"finish_reason\":" +
                      json_string(troupe::to_string(r->finish)) + "}\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
  } else {
    std::printf("\n");
    std::fprintf(stderr, "[%zu prompt tokens, %zu generated, finish: %s]\n", r->prompt_tokens.size(),
                 r->tokens.size(), troupe::to_string(r->finish));
  }
  return 0;
}

// Logprobs as the API returns them: token bytes (which may split a UTF-8 character), so written
// as byte arrays, as OpenAI's chat "bytes" fields are.
std::string remote_logprobs_json(const std::vector<client::token_logprob>& lp) {
  const auto bytes = [](const std::string& t) {
    std::vector<int> b(t.begin(), t.end());
    for (auto& x : b) x &= 0xff;
    return json_int_array(b);
  };
  std::string s = "[";
  for (size_t i = 0; i < lp.size(); ++i) {
    if (i) s += ',';
    s += std::string("{\"bytes\":") + bytes(lp[i].token) + ",\"logprob\":" +
         json_number(lp[i].logprob) + ",\"top\":[";
    for (size_t j = 0; j < lp[i].top.size(); ++j) {
      if (j) s += ',';
      s += std::string("{\"bytes\":") + bytes(lp[i].top[j].token) +
           ",\"logprob\":" + json_number(lp[i].top[j].logprob) + "}";
    }
    s += "]}";
  }
  return s + "]";
}

// The same generation on a cluster (--connect): the server tokenizes and streams text with the
// ids behind it, so --json has the prompt's and the generated ids, as local generate does.
int run_remote(generate_options& o, bool seed_given) {
  auto where = cluster::parse_host_port(o.connect, "--connect");
  if (!where) return std::fprintf(stderr, "error: %s\n", where.message().c_str()), 2;
  client::sampling_options s;
  s.max_tokens = o.req.max_tokens;
  s.temperature = o.req.sampling.temperature;
  s.top_p = o.req.sampling.top_p;
  s.top_k = o.req.sampling.top_k;
  s.min_p = o.req.sampling.min_p;
  s.repetition_penalty = o.req.sampling.repetition_penalty;
  s.presence_penalty = o.req.sampling.presence_penalty;
  s.frequency_penalty = o.req.sampling.frequency_penalty;
  if (seed_given) s.seed = int64_t(o.seed);
  s.logprobs = o.req.sampling.logprobs;
  s.stop = o.req.stop.strings;
  s.stop_token_ids = o.req.stop.token_ids;
  s.ignore_eos = o.req.stop.ignore_eos;
  s.skip_special_tokens = !o.keep_special;
  auto c = client::client::connect(where->host, where->port, o.api_key);
  if (!c) return std::fprintf(stderr, "error: %s\n", c.message().c_str()), 1;
  std::string text;
  std::vector<int32_t> tokens;
  std::vector<client::token_logprob> logprobs;
  std::string finish;
  const client::chunk_callback on_chunk = [&](const client::chunk& ch) {
    text += ch.text;
    tokens.insert(tokens.end(), ch.token_ids.begin(), ch.token_ids.end());
    for (const auto& lp : ch.logprobs) logprobs.push_back(lp);
    if (!ch.finish_reason.empty()) finish = ch.finish_reason;
    if (!o.json) {
      std::fwrite(ch.text.data(), 1, ch.text.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  };
  expected<client::result> r = error{};
  if (!o.chat.empty()) {
    client::chat_request req;
    req.model = o.model;
    if (!o.system.empty()) req.messages.push_back({"system", o.system});
    req.messages.push_back({"user", o.chat});
    req.sampling = s;
    r = c->chat(req, on_chunk);
  } else {
    client::request req;
    req.model = o.model;
    if (!o.prompt_tokens.empty()) {
      auto ids = parse_ids(o.prompt_tokens);
      if (!ids) return std::fprintf(stderr, "error: %s\n", ids.message().c_str()), 2;
      req.prompt_tokens = std::move(*ids);
    } else {
      req.prompt = o.prompt;
    }
    req.sampling = s;
    r = c->generate(req, on_chunk);
  }
  if (!r) return std::fprintf(stderr, "%serror: %s\n", o.json || text.empty() ? "" : "\n", r.message().c_str()), 1;
  if (finish.empty() && !r->finish_reasons.empty()) finish = r->finish_reasons[0];
  if (o.json) {
    std::string out = "{\"prompt_tokens\":" + json_int_array(r->prompt_token_ids) +
                      ",\"tokens\":" + json_int_array(tokens) + ",\"text\":" + json_string(text) +
                      ",\"logprobs\":" + remote_logprobs_json(logprobs) + ",\"finish_reason\":" + json_string(finish) +
                      "}\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
  } else {
    std::printf("\n");
    std::fprintf(stderr, "[%lld prompt tokens, %lld generated, finish: %s]\n", (long long)r->prompt_tokens,
                 (long long)r->completion_tokens, finish.c_str());
  }
  return 0;
}

}  // namespace

command_runner add_generate_command(CLI::App& app) {
  auto o = std::make_shared<generate_options>();
  CLI::App* g = app.add_subcommand("generate", "generate text from a prompt with a local model");
  g->add_option("--model", o->model, "HF folder or .gguf file (with --connect: the served model's name, default its first)");
  g->add_option("--connect", o->connect, "generate on a cluster through its Cap'n Proto API (HOST:PORT)");
  g->add_option("--api-key", o->api_key, "with --connect: the cluster's API key");
  auto* prompt = g->add_option("--prompt", o->prompt, "prompt text (encoded with the model's tokenizer)");
  auto* tokens = g->add_option("--prompt-tokens", o->prompt_tokens, "prompt as token ids: 1,2,3");
  auto* chat = g->add_option("--chat", o->chat, "a user message, rendered with the model's chat template");
  auto* system = g->add_option("--system", o->system, "a system message before --chat");
  prompt->excludes(tokens);
  chat->excludes(prompt)->excludes(tokens);
  system->needs(chat);
  g->add_option("--max-tokens", o->req.max_tokens, "tokens to generate at most")->capture_default_str();
  g->add_option("--temperature", o->req.sampling.temperature, "0 = greedy")->capture_default_str();
  g->add_option("--top-p", o->req.sampling.top_p)->capture_default_str();
  g->add_option("--top-k", o->req.sampling.top_k, "0 = off")->capture_default_str();
  g->add_option("--min-p", o->req.sampling.min_p)->capture_default_str();
  g->add_option("--repetition-penalty", o->req.sampling.repetition_penalty)->capture_default_str();
  g->add_option("--presence-penalty", o->req.sampling.presence_penalty)->capture_default_str();
  g->add_option("--frequency-penalty", o->req.sampling.frequency_penalty)->capture_default_str();
  auto* seed = g->add_option("--seed", o->seed, "sampling seed (same seed, same output)");
  g->add_option("--logprobs", o->req.sampling.logprobs, "log-probabilities: 0 = chosen token, N = plus top N");
  g->add_option("--stop", o->req.stop.strings, "stop string (repeatable)");
  g->add_option("--stop-token-ids", o->req.stop.token_ids, "stop token ids")->delimiter(',');
  g->add_flag("--ignore-eos", o->req.stop.ignore_eos, "keep generating past end-of-sequence tokens");
  g->add_flag("--keep-special", o->keep_special, "keep special tokens in the text");
  g->add_option("--threads", o->threads, "CPU threads (0 = all)")->capture_default_str();
  g->add_option("--device", o->device, "cpu, cuda or cuda:N")->capture_default_str();
  g->add_option("--tp", o->tp, "tensor-parallel ranks (threads of this process; Gloo on CPU, NCCL on GPUs)")
      ->capture_default_str();
  g->add_flag("--no-mmap", o->no_mmap, "read the weights into memory (huge pages) instead of mapping the file");
  g->add_flag("--json", o->json, "print one JSON object instead of streaming text");
  return [o, seed, prompt, tokens, chat]() {
    if (!prompt->count() && !tokens->count() && !chat->count()) {
      std::fprintf(stderr, "error: give --prompt TEXT, --prompt-tokens 1,2,3 or --chat TEXT\n");
      return 2;
    }
    if (!o->connect.empty()) return run_remote(*o, seed->count() > 0);
    if (o->model.empty()) {
      std::fprintf(stderr, "error: give --model PATH (or --connect HOST:PORT)\n");
      return 2;
    }
    return run(*o, seed->count() > 0);
  };
}

}  // namespace troupe::cli
