// Picking a backend by name, for the command line: "cpu", or "cuda" / "cuda:N" when built with
// CUDA. main and the worker wire the one they are given; there is no registry.
#pragma once

#include <memory>
#include <string>

#include "common/expected.hpp"
#include "engine/backend.hpp"

namespace troupe::engine {

// `device`: "cpu" (with `threads`, <= 0 = all cores), "cuda" (device 0) or "cuda:N" (device N,
// or, with `rank`, device N + rank: one GPU per tensor-parallel rank). Errors: an unknown name, a
// build without CUDA, or no such device.
[[nodiscard]] expected<std::unique_ptr<backend>> make_backend(const std::string& device, int threads, int rank = 0);

// A parsed --device: "cpu", "cuda" (GPU 0) or "cuda:N".
struct device_spec {
  bool cuda = false;
  int index = 0;  // the GPU (cuda only)
};
// Errors name the text and the accepted forms.
[[nodiscard]] expected<device_spec> parse_device(const std::string& device);
// The --device text of a spec ("cpu", "cuda:N").
[[nodiscard]] std::string to_string(const device_spec& d);

// True for a valid "cuda..." name (the ranks of such a group all-reduce with NCCL).
[[nodiscard]] bool is_cuda_device(const std::string& device);

}  // namespace troupe::engine
