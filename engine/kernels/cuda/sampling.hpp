// Host launcher for sampling on the device: one token id per row of logits comes back instead of
// the rows themselves. The kernel lives in sampling.cu.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "engine/device_sampling.hpp"

namespace troupe::engine::cuda {

// How a row is sampled (engine::device_sampling). temperature 0 is greedy (the lowest id among
// equal maxima). Otherwise the row's distribution softmax(logits / temperature) is cut to the tokens
// at or above the top_k-th largest logit (ties kept, as Hugging Face's TopKLogitsWarper; 0 = no
// cut), then to the fewest most likely tokens holding top_p of the remaining mass (1 = no cut), and
// one token is drawn with a uniform number derived from (seed, counter) alone: the same pair always
// draws the same token, so a recomputed step repeats its choice.
using sample_params = engine::device_sampling;

// logits [rows, vocab] f32 and params [rows] on the device; writes out [rows] on the device.
[[nodiscard]] cudaError_t launch_sample(const float* logits, int64_t rows, int64_t vocab, const sample_params* params,
                                        int32_t* out, cudaStream_t stream);

}  // namespace troupe::engine::cuda
