// Reader for the safetensors format: an 8-byte little-endian header length, a JSON header mapping
// tensor names to {dtype, shape, data_offsets}, then the raw data. Every field is checked.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/expected.hpp"
#include "engine/model/mapped_file.hpp"
#include "engine/model/tensor_view.hpp"

namespace troupe::engine {

// Header limit: real checkpoints use well under 1 MiB; 100 MiB is the format's own recommended cap.
inline constexpr size_t safetensors_max_header = 100u << 20;

struct safetensors_file {
  std::shared_ptr<const mapped_file> file;  // keeps the mapping alive for the views
  std::vector<tensor_view> tensors;         // in header order; data points into `file`
  std::map<std::string, std::string> metadata;  // the optional "__metadata__" string map

  [[nodiscard]] const tensor_view* find(const std::string& name) const;
};

// Parses a whole in-memory safetensors image. `file_name` is used in error messages only.
// Checks: header length within the image and the cap, valid JSON object, known dtypes (F32, F16,
// BF16), shapes non-negative and their product not overflowing, offsets ordered, inside the data
// section and equal to numel * element size, no two tensors overlapping, no duplicate names.
[[nodiscard]] expected<safetensors_file> parse_safetensors(std::span<const std::byte> image,
                                                           const std::string& file_name);

// Maps and parses a file; the views stay valid while the returned object (or a copy of `file`) lives.
[[nodiscard]] expected<safetensors_file> open_safetensors(const std::string& path,
                                         load_mode mode = load_mode::map);

// A tensor to write: name, dtype (f32/f16/bf16), row-major shape and exactly the matching bytes.
struct safetensors_entry {
  std::string name;
  dtype type;
  std::vector<int64_t> shape;
  std::vector<std::byte> data;
};

// Writes a safetensors file (header padded to 8 bytes, as the Python library does).
[[nodiscard]] expected<void> write_safetensors(const std::string& path,
                                               const std::vector<safetensors_entry>& tensors,
                                               const std::map<std::string, std::string>& metadata);

}  // namespace troupe::engine
