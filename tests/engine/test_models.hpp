// Small models the engine tests share, made once per test binary with make_tiny_model.
#pragma once

#include "tests/test_tmp.hpp"
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "engine/tiny_model.hpp"

namespace troupe::test {

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

}  // namespace troupe::test
