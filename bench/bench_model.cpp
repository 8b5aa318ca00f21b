// The model both engine benchmarks run on, loaded and checked once in one place.
#include <cstdio>

#include "bench/benchmarks.hpp"

namespace troupe::bench {

std::shared_ptr<const engine::model> load_bench_model(const std::string& path, bool no_mmap, int64_t prompt_len,
                                                      int64_t gen, int& exit_code) {
  auto m = engine::load_model(path, no_mmap ? engine::load_mode::read : engine::load_mode::map);
  if (!m) {
    std::fprintf(stderr, "error: %s\n", m.message().c_str());
    exit_code = 1;
    return nullptr;
  }
  const engine::model_config& c = (*m)->config;
  if (prompt_len + gen > c.max_position) {
    std::fprintf(stderr, "error: --prompt-len + --gen = %lld exceeds the model's context of %lld tokens\n",
                 (long long)(prompt_len + gen), (long long)c.max_position);
    exit_code = 2;
    return nullptr;
  }
  return *m;
}

}  // namespace troupe::bench
