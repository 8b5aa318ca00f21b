// The paged-attention work item compiled for AVX2 (see paged_attention_impl.hpp).
#include <algorithm>

#include "engine/kernels/cpu/paged_attention_impl.hpp"

namespace troupe::engine::cpu::detail {

void paged_attention_item_avx2(const paged_attention_args& a, int64_t token, int64_t kv_begin,
                               int64_t kv_end, float* scratch) {
  for (int64_t g = kv_begin; g < kv_end; ++g) pa_item(a, token, g, scratch);
}

}  // namespace troupe::engine::cpu::detail
