// Small models the engine tests share, made once per test binary with make_tiny_model.
#pragma once

#include "tests/test_tmp.hpp"
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/cpu_backend.hpp"
#include "engine/llama_forward.hpp"
#include "engine/tiny_model.hpp"

namespace troupe::test {

// max |got - want| / max |want|: how far a run's logits are from a reference run's.
inline double rel_error(const std::vector<float>& got, const std::vector<float>& want) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    diff = std::max(diff, std::abs(double(got[i]) - double(want[i])));
    scale = std::max(scale, std::abs(double(want[i])));
  }
  return diff / scale;
}

// Writes (once per process) a tiny model under the process's scratch folder and returns its path.
inline std::string tiny_model(const std::string& name, engine::tiny_model_spec spec = {}) {
  const std::string dir = test::process_tmp() + "/" + name;
  if (!std::filesystem::exists(dir + "/config.json")) {
    spec.gguf_path = dir + ".gguf";
    auto ok = engine::make_tiny_model(spec, dir);
    EXPECT_TRUE(ok) << ok.message();
  }
  return dir;
}

// The tensor-parallel tests' model: 2 layers, dim 64, 8 heads over `kv_heads` kv heads, ffn 128,
// vocab 320, context 128 (8 heads and the ffn split over 2 and 4 ranks).
inline engine::tiny_model_spec tp_spec(const std::string& arch, int64_t kv_heads, uint64_t seed) {
  engine::tiny_model_spec s;
  s.arch = arch;
  s.layers = 2;
  s.dim = 64;
  s.heads = 8;
  s.kv_heads = kv_heads;
  s.ffn = 128;
  s.vocab = 320;
  s.max_position = 128;
  s.seed = seed;
  return s;
}

// A small default: 2 layers, dim 64, vocab 512.
inline engine::tiny_model_spec small_spec() {
  engine::tiny_model_spec s;
  s.layers = 2;
  s.dim = 64;
  s.heads = 4;
  s.kv_heads = 2;
  s.ffn = 128;
  s.vocab = 512;
  s.max_position = 128;
  return s;
}

// A tiny model loaded onto a 2-thread CPU backend with a forward pass of up to `max_tokens` per
// call (members are null after a failed load; the failure is reported with EXPECT).
struct cpu_forward {
  std::shared_ptr<const engine::model> model;
  std::unique_ptr<engine::backend> be;
  std::unique_ptr<engine::llama_forward> fwd;
};
inline cpu_forward load_cpu_forward(const std::string& name, const engine::tiny_model_spec& spec,
                                    int64_t max_tokens) {
  cpu_forward out;
  auto m = engine::load_model(tiny_model(name, spec));
  EXPECT_TRUE(m) << m.message();
  if (!m) return out;
  out.model = *m;
  out.be = engine::make_cpu_backend(2);
  auto fwd = engine::llama_forward::create(out.model, *out.be, max_tokens);
  EXPECT_TRUE(fwd) << fwd.message();
  if (fwd) out.fwd = std::move(*fwd);
  return out;
}

}  // namespace troupe::test
