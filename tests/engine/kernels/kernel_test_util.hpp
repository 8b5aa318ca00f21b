// Shared helpers for the kernel tests: random weight matrices in every dtype and their exact
// f32 values, for double-precision reference results.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "engine/kernels/cpu/kernels.hpp"
#include "engine/kernels/cpu/kernels_impl.hpp"

namespace troupe::engine::cpu::testing {

// The name of a SIMD path, for test messages.
inline const char* level_name(detail::simd_level l) {
  switch (l) {
    case detail::simd_level::avx512: return "avx512";
    case detail::simd_level::avx2: return "avx2";
    case detail::simd_level::scalar: break;
  }
  return "scalar";
}

// A weight matrix that owns its bytes, plus the exact value of every stored weight.
struct test_weights {
  std::vector<uint8_t> bytes;
  std::vector<float> values;  // [rows, cols], what the stored weights decode to
  weight_matrix view;
};

inline test_weights make_weights(dtype type, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 0.5f);
  test_weights t;
  t.values.resize(size_t(rows * cols));
  t.bytes.resize(*row_bytes(type, cols) * size_t(rows) + 64);
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row = t.bytes.data() + size_t(r) * *row_bytes(type, cols);
    float* vals = t.values.data() + r * cols;
    switch (type) {
      case dtype::f32:
        for (int64_t k = 0; k < cols; ++k) {
          vals[k] = normal(rng);
          std::memcpy(row + 4 * k, &vals[k], 4);
        }
        break;
      case dtype::f16:
        for (int64_t k = 0; k < cols; ++k) {
          const uint16_t h = f32_to_f16(normal(rng));
          vals[k] = f16_to_f32(h);
          std::memcpy(row + 2 * k, &h, 2);
        }
        break;
      case dtype::bf16:
        for (int64_t k = 0; k < cols; ++k) {
          const uint16_t h = f32_to_bf16(normal(rng));
          vals[k] = bf16_to_f32(h);
          std::memcpy(row + 2 * k, &h, 2);
        }
        break;
      case dtype::q8_0: {
        std::uniform_int_distribution<int> q(-128, 127);
        std::uniform_real_distribution<float> scale(0.001f, 0.02f);
        for (int64_t b = 0; b < cols / q8_0_block; ++b) {
          block_q8_0 blk;
          blk.d = f32_to_f16(scale(rng));
          for (int j = 0; j < 32; ++j) {
            blk.qs[j] = int8_t(q(rng));
            vals[b * 32 + j] = f16_to_f32(blk.d) * float(blk.qs[j]);
          }
          std::memcpy(row + size_t(b) * sizeof(block_q8_0), &blk, sizeof(blk));
        }
        break;
      }
    }
  }
  t.view = weight_matrix{t.bytes.data(), type, rows, cols};
  return t;
}

inline std::vector<float> random_floats(size_t count, uint32_t seed, float stddev = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, stddev);
  std::vector<float> v(count);
  for (auto& x : v) x = normal(rng);
  return v;
}

}  // namespace troupe::engine::cpu::testing
