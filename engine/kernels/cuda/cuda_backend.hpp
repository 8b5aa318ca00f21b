// The CUDA backend: the forward pass's ops on one GPU. Matrices live on the device in bf16 (any
// stored dtype is converted once at upload) and multiply through cuBLASLt with f32 accumulation
// and f32 outputs; activations, norms, biases and the paged KV cache are f32 on the device. Every
// op is enqueued on the backend's one stream; host inputs (token ids, positions, block tables)
// are uploaded only when they changed since the previous op, so a step uploads its batch once,
// not once per layer. Every CUDA and cuBLAS status is checked: the first failure is kept and
// returned by check() (which the forward pass calls at the end of each call), never an abort.
//
// Decode steps run as CUDA graphs (backend::run_graph), captured once per batch-size bucket by the
// forward pass; attention over long contexts is split along the KV length (flash-decoding).
// Sampling runs on the device (temperature, top-k, top-p, min-p, penalties). Not yet: logprobs on
// the device, bf16 KV. See docs/DECISIONS.md.
#pragma once

#include <memory>

#include "common/expected.hpp"
#include "engine/backend.hpp"

namespace troupe::engine {

// A backend on CUDA device `device`. Errors: no such device, or the stream / cuBLASLt handle could
// not be made (named).
[[nodiscard]] expected<std::unique_ptr<backend>> make_cuda_backend(int device);

}  // namespace troupe::engine
