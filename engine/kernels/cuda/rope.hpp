// Host launcher for the rotary position embedding; the kernel lives in rope.cu.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace troupe::engine::cuda {

// Rotates x [n, n_heads * head_dim] in place: token t at position pos[t], pair i by angle
// pos[t] * inv_freq[i] (head_dim / 2 entries). Pairs are (2i, 2i+1) when `interleaved` (GGUF's
// layout) and (i, i + head_dim/2) otherwise (Hugging Face's). Angles in f64, as the CPU kernel.
[[nodiscard]] cudaError_t launch_rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, const int32_t* pos,
                                      const float* inv_freq, bool interleaved, cudaStream_t stream);

}  // namespace troupe::engine::cuda
