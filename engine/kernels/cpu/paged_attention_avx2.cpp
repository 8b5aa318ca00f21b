// The paged-attention work item compiled for AVX2 (see paged_attention_impl.hpp).
#include <algorithm>

#include "engine/kernels/cpu/paged_attention_impl.hpp"

namespace troupe::engine::cpu::detail {

void paged_attention_item_avx2(const paged_attention_args& a, int64_t token, int64_t kv_head,
                               float* scratch) {
  pa_item(a, token, kv_head, scratch);
}

}  // namespace troupe::engine::cpu::detail
