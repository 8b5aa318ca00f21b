// The CPU backend: SIMD kernels and OpenBLAS over a thread pool; weights used in place from the
// memory-mapped checkpoint. A first-class backend, not a mock: every engine feature runs on it.
#pragma once

#include <memory>

#include "engine/backend.hpp"

namespace troupe::engine {

// n_threads <= 0: one per hardware thread.
[[nodiscard]] std::unique_ptr<backend> make_cpu_backend(int n_threads);

}  // namespace troupe::engine
