// GGUF type codes shared by the reader and the writer: metadata value types and the ggml tensor
// types this engine loads, with the names used in error messages.
#pragma once

#include <cstdint>
#include <optional>
#include <iterator>
#include <string>
#include <variant>

#include "engine/model/dtype.hpp"
#include "engine/model/gguf.hpp"

namespace troupe::engine::detail {

inline constexpr uint32_t gguf_magic = 0x46554747;  // "GGUF" read as a little-endian u32

enum class gguf_type : uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8,
  array = 9, u64 = 10, i64 = 11, f64 = 12,
};
inline constexpr uint32_t gguf_type_count = 13;

[[nodiscard]] inline std::string gguf_type_name(uint32_t t) {
  static constexpr const char* names[gguf_type_count] = {
      "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
  if (t < gguf_type_count) return names[t];
  return "type " + std::to_string(t);
}

// The GGUF type of a value; the variant's alternatives are listed in a different order.
[[nodiscard]] inline gguf_type gguf_type_of(const gguf_value& v) {
  static constexpr gguf_type by_index[] = {
      gguf_type::u8,  gguf_type::i8,  gguf_type::u16, gguf_type::i16,     gguf_type::u32,
      gguf_type::i32, gguf_type::u64, gguf_type::i64, gguf_type::f32,     gguf_type::f64,
      gguf_type::boolean, gguf_type::string, gguf_type::array};
  static_assert(std::variant_size_v<decltype(gguf_value::v)> == std::size(by_index));
  return by_index[v.v.index()];
}

// "u32", "array of string", "array of array of i32" (empty arrays have no element type).
[[nodiscard]] inline std::string gguf_value_type_name(const gguf_value& v) {
  const auto t = gguf_type_of(v);
  if (t != gguf_type::array) return gguf_type_name(uint32_t(t));
  const auto& a = std::get<gguf_array>(v.v);
  if (a.empty()) return "empty array";
  return "array of " + gguf_value_type_name(a.front());
}

// ggml tensor type numbers.
inline constexpr uint32_t ggml_f32 = 0, ggml_f16 = 1, ggml_q8_0 = 8, ggml_bf16 = 30;

[[nodiscard]] inline std::optional<dtype> dtype_from_ggml(uint32_t t) {
  switch (t) {
    case ggml_f32: return dtype::f32;
    case ggml_f16: return dtype::f16;
    case ggml_q8_0: return dtype::q8_0;
    case ggml_bf16: return dtype::bf16;
    default: return std::nullopt;
  }
}

[[nodiscard]] inline uint32_t ggml_from_dtype(dtype t) {
  switch (t) {
    case dtype::f32: return ggml_f32;
    case dtype::f16: return ggml_f16;
    case dtype::q8_0: return ggml_q8_0;
    case dtype::bf16: return ggml_bf16;
  }
  return ggml_f32;
}

}  // namespace troupe::engine::detail
