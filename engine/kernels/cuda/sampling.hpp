// Host launcher for sampling on the device: one token id per row of logits comes back instead of
// the rows themselves. The kernel lives in sampling.cu.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "engine/device_sampling.hpp"

namespace troupe::engine::cuda {

// How a row is sampled (engine::device_sampling). First the penalties: each of the row's
// penalty entries gets penalized_logit (device_sampling.hpp), as the host sampler does. temperature
// 0 is then greedy (the lowest id among equal maxima), and so is a row holding NaN or +inf.
// Otherwise the row's distribution softmax(logits / temperature) is cut to the tokens at or above
// the top_k-th largest logit (ties kept, as Hugging Face's TopKLogitsWarper; 0 = no cut), then to
// the fewest most likely tokens holding top_p of the remaining mass (1 = no cut), then to those at
// least min_p times as likely as the best (0 = no cut), and one token is drawn with a uniform number
// derived from (seed, counter) alone: the same pair always draws the same token, so a recomputed
// step repeats its choice.
using sample_params = engine::device_sampling;

// logits [rows, vocab] f32 (edited in place by the penalties), params [rows] and penalties (the
// entries the params index; null when no row has any) on the device; writes out [rows] on the
// device.
[[nodiscard]] cudaError_t launch_sample(float* logits, int64_t rows, int64_t vocab, const sample_params* params,
                                        const penalty_entry* penalties, int32_t* out, cudaStream_t stream);

}  // namespace troupe::engine::cuda
