// A named, typed, read-only view of a tensor's bytes, usually inside a memory-mapped checkpoint.
// Shapes are row-major as PyTorch writes them: shape[0] is the slowest dimension (for a linear
// weight, the output features), the last dimension is contiguous. GGUF's reversed `ne` order is
// converted to this order by the GGUF reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/model/dtype.hpp"

namespace troupe::engine {

struct tensor_view {
  std::string name;
  dtype type = dtype::f32;
  std::vector<int64_t> shape;     // row-major; empty for a scalar
  const std::byte* data = nullptr;  // valid while the owning file object lives
  size_t nbytes = 0;

  [[nodiscard]] int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  // Rows and columns of a 2-D weight ([out_features, in_features]); a 1-D tensor is one row.
  [[nodiscard]] int64_t rows() const { return shape.size() >= 2 ? shape[0] : 1; }
  [[nodiscard]] int64_t cols() const { return shape.empty() ? 1 : shape.back(); }
};

}  // namespace troupe::engine
