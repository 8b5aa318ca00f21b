// `troupe bench tokenizer --model PATH [--text FILE] [--json]`: encoding, decoding and streaming
// detokenization speed of a model's tokenizer (tokenizer.json folder or GGUF), with Google
// Benchmark. The default text is ~100 KB: the default training corpus (English prose with digits,
// accented Latin, a little CJK and emoji) followed by copies of it with the ASCII letters shifted
// (Caesar 1, 2, ...), so that words do not repeat across copies and the BPE word cache does not
// flatter the figure. Reported as bytes/s (MB/s of text) and tokens/s; each benchmark runs 5
// repetitions and reports their median (the cache is warm after the first).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>

#include "bench/benchmarks.hpp"
#include "engine/model/gguf.hpp"
#include "engine/tokenizer/incremental_decoder.hpp"
#include "engine/tokenizer/tokenizer.hpp"

namespace troupe::bench {
namespace {

struct tokenizer_bench_options {
  std::string model;
  std::string text_file;
  std::string save_text;  // writes the text used here, for a peer to encode the same bytes
  size_t text_bytes = 100 * 1024;
  bool json = false;
};

expected<std::unique_ptr<engine::tokenizer>> load(const std::string& path) {
  if (path.ends_with(".gguf")) {
    auto file = engine::open_gguf(path);
    if (!file) return file.err();
    return engine::load_tokenizer_gguf(*file);
  }
  return engine::load_tokenizer_json(path);
}

std::string bench_text(const tokenizer_bench_options& o) {
  std::string text;
  if (!o.text_file.empty()) {
    std::ifstream in(o.text_file, std::ios::binary);
    text.assign(std::istreambuf_iterator<char>(in), {});
    return text;
  }
  const std::string_view corpus = engine::default_training_corpus();
  for (int shift = 0; text.size() < o.text_bytes; ++shift) {
    for (const char c : corpus) {
      if (c >= 'a' && c <= 'z') {
        text.push_back(static_cast<char>('a' + (c - 'a' + shift) % 26));
      } else if (c >= 'A' && c <= 'Z') {
        text.push_back(static_cast<char>('A' + (c - 'A' + shift) % 26));
      } else {
        text.push_back(c);
      }
    }
  }
  // Cut at a line end so that no character is split.
  const size_t cut = text.rfind('\n', o.text_bytes);
  text.resize(cut == std::string::npos ? o.text_bytes : cut + 1);
  return text;
}

int run_tokenizer_bench(const tokenizer_bench_options& o) {
  auto tok = load(o.model);
  if (!tok) {
    std::fprintf(stderr, "error: %s\n", tok.message().c_str());
    return 1;
  }
  if (!o.text_file.empty() && !std::ifstream(o.text_file)) {
    std::fprintf(stderr, "error: --text: cannot read %s\n", o.text_file.c_str());
    return 1;
  }
  const std::string text = bench_text(o);
  if (!o.save_text.empty()) std::ofstream(o.save_text, std::ios::binary) << text;
  const engine::tokenizer& t = **tok;
  const std::vector<int32_t> ids = t.encode(text, false);

  benchmark::RegisterBenchmark("encode", [&](benchmark::State& state) {
    for (auto _ : state) benchmark::DoNotOptimize(t.encode(text, false));
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
    state.counters["tokens_per_second"] = benchmark::Counter(
        double(ids.size()) * double(state.iterations()), benchmark::Counter::kIsRate);
  })->Unit(benchmark::kMillisecond);
  // A freshly loaded tokenizer each time: its word cache starts empty.
  benchmark::RegisterBenchmark("encode_cold_cache", [&](benchmark::State& state) {
    for (auto _ : state) {
      state.PauseTiming();
      auto fresh = load(o.model);
      state.ResumeTiming();
      benchmark::DoNotOptimize((*fresh)->encode(text, false));
      state.PauseTiming();
      fresh->reset();
      state.ResumeTiming();
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
  })->Unit(benchmark::kMillisecond)->Iterations(3);
  benchmark::RegisterBenchmark("decode", [&](benchmark::State& state) {
    for (auto _ : state) benchmark::DoNotOptimize(t.decode(ids));
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
    state.counters["tokens_per_second"] = benchmark::Counter(
        double(ids.size()) * double(state.iterations()), benchmark::Counter::kIsRate);
  })->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("stream_decode", [&](benchmark::State& state) {
    for (auto _ : state) {
      engine::incremental_decoder d(t);
      size_t n = 0;
      for (const int32_t id : ids) n += d.push(id).size();
      n += d.flush().size();
      benchmark::DoNotOptimize(n);
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
    state.counters["tokens_per_second"] = benchmark::Counter(
        double(ids.size()) * double(state.iterations()), benchmark::Counter::kIsRate);
  })->Unit(benchmark::kMillisecond);

  std::fprintf(stderr, "tokenizer %s: %zu bytes of text, %zu tokens\n", o.model.c_str(),
               text.size(), ids.size());
  std::vector<std::string> args = {"troupe-bench-tokenizer", "--benchmark_repetitions=5",
                                   "--benchmark_report_aggregates_only=true"};
  if (o.json) args.emplace_back("--benchmark_format=json");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  int argc = static_cast<int>(argv.size());
  benchmark::Initialize(&argc, argv.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace

command_runner add_tokenizer_bench(CLI::App& bench) {
  auto o = std::make_shared<tokenizer_bench_options>();
  CLI::App* cmd = bench.add_subcommand("tokenizer", "encode / decode / streaming-decode speed");
  cmd->add_option("--model", o->model, "HF folder (tokenizer.json) or .gguf file")->required();
  cmd->add_option("--text", o->text_file, "text file to encode (default: ~100 KB of the built-in corpus)");
  cmd->add_option("--save-text", o->save_text, "also write the text used to this file");
  cmd->add_flag("--json", o->json, "Google Benchmark's JSON output");
  return [o]() { return run_tokenizer_bench(*o); };
}

}  // namespace troupe::bench
