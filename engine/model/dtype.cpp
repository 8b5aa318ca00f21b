// Scalar dtype conversions (the vectorized ones live in kernels/cpu).
#include "engine/model/dtype.hpp"

#include <cmath>

namespace troupe::engine {

std::optional<dtype> parse_dtype(std::string_view name) {
  if (name == "f32" || name == "F32" || name == "float32") return dtype::f32;
  if (name == "f16" || name == "F16" || name == "float16") return dtype::f16;
  if (name == "bf16" || name == "BF16" || name == "bfloat16") return dtype::bf16;
  if (name == "q8_0" || name == "Q8_0") return dtype::q8_0;
  return std::nullopt;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: value = mant * 2^-24
      float f = std::ldexp(float(mant), -24);
      std::memcpy(&u, &f, 4);
      u |= sign;
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (mant << 13);
  } else {
    u = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;               // NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00u;              // overflow -> inf (rounds past 65504)
  if (abs < 0x38800000u) {                                    // subnormal or zero in half
    float a;
    std::memcpy(&a, &abs, 4);
    return sign | uint16_t(std::nearbyint(a * 16777216.0f));  // a / 2^-24, round to nearest even
  }
  uint32_t r = abs + 0xfffu + ((abs >> 13) & 1u);             // round to nearest even
  return sign | uint16_t(((r >> 13) - (112u << 10)) & 0xffffu);
}

}  // namespace troupe::engine
