// Element types of weights as stored in checkpoints, and the scalar conversions between them.
// Q8_0 follows GGUF: blocks of 32 int8 values with one f16 scale (34 bytes per block).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace troupe::engine {

enum class dtype : uint8_t { f32, f16, bf16, q8_0 };

inline constexpr int64_t q8_0_block = 32;  // values per Q8_0 block

struct block_q8_0 {
  uint16_t d;      // scale, IEEE half
  int8_t qs[32];   // quantized values: x = d * q
};
static_assert(sizeof(block_q8_0) == 34);

[[nodiscard]] constexpr std::string_view dtype_name(dtype t) {
  switch (t) {
    case dtype::f32: return "f32";
    case dtype::f16: return "f16";
    case dtype::bf16: return "bf16";
    case dtype::q8_0: return "q8_0";
  }
  return "?";
}

[[nodiscard]] std::optional<dtype> parse_dtype(std::string_view name);

// Bytes taken by one row of `n` elements; nullopt when `n` does not fit the type's block size.
[[nodiscard]] constexpr std::optional<size_t> row_bytes(dtype t, int64_t n) {
  if (n < 0) return std::nullopt;
  switch (t) {
    case dtype::f32: return size_t(n) * 4;
    case dtype::f16:
    case dtype::bf16: return size_t(n) * 2;
    case dtype::q8_0:
      if (n % q8_0_block != 0) return std::nullopt;
      return size_t(n / q8_0_block) * sizeof(block_q8_0);
  }
  return std::nullopt;
}

[[nodiscard]] inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even, as PyTorch does; NaN stays NaN.
[[nodiscard]] inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

[[nodiscard]] float f16_to_f32(uint16_t h);
[[nodiscard]] uint16_t f32_to_f16(float f);

}  // namespace troupe::engine
