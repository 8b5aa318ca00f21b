// Reader and writer for GGUF v3 (llama.cpp's single-file format): header, typed metadata key/values,
// tensor infos, aligned tensor data. Every count, length, dimension and offset is checked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "common/expected.hpp"
#include "engine/model/mapped_file.hpp"
#include "engine/model/tensor_view.hpp"

namespace troupe::engine {

// Limits that keep a hostile file from asking for huge allocations before any data is read.
inline constexpr uint64_t gguf_max_string = 1u << 24;           // 16 MiB per string
inline constexpr uint64_t gguf_max_array = 1u << 26;            // 64 Mi elements per array
inline constexpr uint64_t gguf_max_kv = 1u << 20;               // metadata entries
inline constexpr uint64_t gguf_max_tensors = 1u << 20;
inline constexpr uint32_t gguf_max_dims = 4;
inline constexpr uint32_t gguf_max_nesting = 8;                // arrays inside arrays, levels
// Array elements in all the metadata together: a parsed value takes ~40 bytes however small its
// encoding, so this bounds the memory a file can make the reader use (~640 MiB); real vocabularies
// need about 1 Mi (tokens, scores, types, merges).
inline constexpr uint64_t gguf_max_metadata_values = 1u << 24;

struct gguf_value;
using gguf_array = std::vector<gguf_value>;

// One metadata value. Integer types are kept apart so that a writer can round-trip them;
// the typed getters below convert between integer widths where the value fits.
struct gguf_value {
  std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, uint64_t, int64_t, float,
               double, bool, std::string, gguf_array>
      v;
};

struct gguf_file {
  std::shared_ptr<const mapped_file> file;  // keeps the mapping alive for the views (may be null
                                            // for an in-memory parse; then views point into it)
  uint32_t version = 3;
  uint32_t alignment = 32;                  // general.alignment, default 32
  std::map<std::string, gguf_value> metadata;
  std::vector<tensor_view> tensors;         // shape converted to row-major (ne reversed)
  std::string file_name;                    // as given to the parser; for error messages

  [[nodiscard]] const tensor_view* find(const std::string& name) const;
  [[nodiscard]] const gguf_value* get(const std::string& key) const;

  // Typed metadata access; errors name the key and the type found.
  [[nodiscard]] expected<std::string> get_string(const std::string& key) const;
  [[nodiscard]] expected<int64_t> get_int(const std::string& key) const;      // any integer type
  [[nodiscard]] expected<double> get_float(const std::string& key) const;     // f32, f64 or integer
  [[nodiscard]] expected<bool> get_bool(const std::string& key) const;
  [[nodiscard]] expected<std::vector<std::string>> get_strings(const std::string& key) const;
  [[nodiscard]] expected<std::vector<int64_t>> get_ints(const std::string& key) const;
  [[nodiscard]] expected<std::vector<double>> get_floats(const std::string& key) const;
};

// Parses an in-memory GGUF image (v2 and v3; v1 is refused). Tensor types accepted: F32 (0),
// F16 (1), Q8_0 (8), BF16 (30); others are an error naming the tensor and the type number.
[[nodiscard]] expected<gguf_file> parse_gguf(std::span<const std::byte> image,
                                             const std::string& file_name);

// Maps and parses a file.
[[nodiscard]] expected<gguf_file> open_gguf(const std::string& path,
                                  load_mode mode = load_mode::map);

// A tensor to write; shape is row-major (the writer reverses it into GGUF's ne order) and `data`
// holds exactly row_bytes(type, shape.back()) * rows bytes.
struct gguf_tensor_entry {
  std::string name;
  dtype type;
  std::vector<int64_t> shape;
  std::vector<std::byte> data;
};

// Writes a GGUF v3 file with the given metadata (in map order) and tensors (in vector order).
[[nodiscard]] expected<void> write_gguf(const std::string& path,
                                        const std::map<std::string, gguf_value>& metadata,
                                        const std::vector<gguf_tensor_entry>& tensors,
                                        uint32_t alignment = 32);

}  // namespace troupe::engine
