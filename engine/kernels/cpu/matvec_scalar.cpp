// Portable fallback for every kernel of the path table: plain loops in double precision, used
// when the CPU lacks AVX2 (or TROUPE_SIMD=scalar) and as the shared definition of the results.
#include <cmath>

#include "engine/kernels/cpu/kernels_impl.hpp"

namespace troupe::engine::cpu::detail {

namespace {

const uint8_t* row_ptr(const weight_matrix& w, int64_t row) {
  return static_cast<const uint8_t*>(w.data) + size_t(row) * *row_bytes(w.type, w.cols);
}

template <class Convert>
void rows_generic(const weight_matrix& w, const float* x, int64_t row_begin, int64_t row_end,
                  float* y, Convert convert) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const uint8_t* p = row_ptr(w, r);
    double sum = 0;
    for (int64_t k = 0; k < w.cols; ++k) sum += double(convert(p, k)) * double(x[k]);
    y[r] = float(sum);
  }
}

void rows_f32(const weight_matrix& w, const activations& a, int64_t t, int64_t rb, int64_t re,
              float* y) {
  rows_generic(w, a.f32 + t * a.cols, rb, re, y, [](const uint8_t* p, int64_t k) {
    float v;
    std::memcpy(&v, p + 4 * k, 4);
    return v;
  });
}

void rows_f16(const weight_matrix& w, const activations& a, int64_t t, int64_t rb, int64_t re,
              float* y) {
  rows_generic(w, a.f32 + t * a.cols, rb, re, y, [](const uint8_t* p, int64_t k) {
    uint16_t h;
    std::memcpy(&h, p + 2 * k, 2);
    return f16_to_f32(h);
  });
}

void rows_bf16(const weight_matrix& w, const activations& a, int64_t t, int64_t rb, int64_t re,
               float* y) {
  rows_generic(w, a.f32 + t * a.cols, rb, re, y, [](const uint8_t* p, int64_t k) {
    uint16_t h;
    std::memcpy(&h, p + 2 * k, 2);
    return bf16_to_f32(h);
  });
}

// Integer dot per 32-block, scaled by both block scales: the same arithmetic as the SIMD paths.
void rows_q8_0(const weight_matrix& w, const activations& a, int64_t t, int64_t rb, int64_t re,
               float* y) {
  const int64_t blocks = w.cols / q8_0_block;
  const int8_t* xq = a.q8 + t * a.cols;
  const float* xs = a.q8_scale + t * blocks;
  for (int64_t r = rb; r < re; ++r) {
    const auto* b = reinterpret_cast<const block_q8_0*>(row_ptr(w, r));
    double sum = 0;
    for (int64_t i = 0; i < blocks; ++i) {
      int32_t dot = 0;
      for (int j = 0; j < 32; ++j) dot += int32_t(b[i].qs[j]) * int32_t(xq[i * 32 + j]);
      sum += double(f16_to_f32(b[i].d)) * double(xs[i]) * double(dot);
    }
    y[r] = float(sum);
  }
}

void convert_scalar(const weight_matrix& w, int64_t row, int64_t k0, int64_t count, float* out) {
  const uint8_t* p = row_ptr(w, row);
  switch (w.type) {
    case dtype::f32:
      std::memcpy(out, p + 4 * k0, size_t(count) * 4);
      return;
    case dtype::f16:
    case dtype::bf16:
      for (int64_t k = 0; k < count; ++k) {
        uint16_t h;
        std::memcpy(&h, p + 2 * (k0 + k), 2);
        out[k] = w.type == dtype::f16 ? f16_to_f32(h) : bf16_to_f32(h);
      }
      return;
    case dtype::q8_0: {
      const auto* b = reinterpret_cast<const block_q8_0*>(p);
      for (int64_t k = 0; k < count; ++k) {
        const block_q8_0& blk = b[(k0 + k) / 32];
        out[k] = f16_to_f32(blk.d) * float(blk.qs[(k0 + k) % 32]);
      }
      return;
    }
  }
}


double read_scalar(const float* p, int64_t count) {
  float s[8] = {};
  for (int64_t i = 0; i + 8 <= count; i += 8)
    for (int j = 0; j < 8; ++j) s[j] += p[i + j];
  double total = 0;
  for (float v : s) total += v;
  return total;
}

// The portable path's peak is not one float at a time: the compiler vectorizes its loops with the
// baseline ISA (SSE2 on x86-64: separate multiply and add, 4 lanes). So the probe runs 12
// independent 4-lane multiply-add chains held in registers (enough to cover the multiply plus add
// latency at two of each per cycle); a scalar probe read 3x below what rows_f32 reached and made
// "fraction of the peak" exceed 1 (CI, session 10).
using float4 = float __attribute__((vector_size(16)));
constexpr int fma_chain_count = 12;

float fma_chains_scalar(int64_t iterations) {
  float4 a[fma_chain_count];
  for (int k = 0; k < fma_chain_count; ++k)  // distinct starts: see fma_chains_avx512
    a[k] = float4{1.00f, 1.01f, 1.02f, 1.03f} + float(k) * 0.04f;
  const float4 b = {0.9999f, 0.9999f, 0.9999f, 0.9999f}, c = {1e-4f, 1e-4f, 1e-4f, 1e-4f};
  for (int64_t it = 0; it < iterations; ++it) {
    for (float4& v : a) v = v * b + c;
#if defined(__x86_64__)
    // Keeps every chain live in its register each iteration, so nothing folds or spills.
    asm volatile("" : "+x"(a[0]), "+x"(a[1]), "+x"(a[2]), "+x"(a[3]), "+x"(a[4]), "+x"(a[5]),
                 "+x"(a[6]), "+x"(a[7]), "+x"(a[8]), "+x"(a[9]), "+x"(a[10]), "+x"(a[11]));
#else
    asm volatile("" : "+m"(a));
#endif
  }
  float4 sum = {};
  for (const float4& v : a) sum += v;
  return sum[0] + sum[1] + sum[2] + sum[3];
}

}  // namespace

void softmax_scalar(float* s, int64_t count) {
  float mx = s[0];
  for (int64_t j = 1; j < count; ++j) mx = std::max(mx, s[j]);
  float sum = 0;
  for (int64_t j = 0; j < count; ++j) sum += (s[j] = std::exp(s[j] - mx));
  const float inv = 1.f / sum;
  for (int64_t j = 0; j < count; ++j) s[j] *= inv;
}

const path_table& scalar_table() {
  static const path_table table{
      {rows_f32, rows_f16, rows_bf16, rows_q8_0},
      nullptr,
      nullptr,
      nullptr,
      convert_scalar,
      quantize_q8_portable,
      false,
      softmax_scalar,
      log_sum_exp_scalar,
      silu_mul_scalar,
      read_scalar,
      fma_chains_scalar,
      fma_chain_count * 4 * 2,
      nullptr,
      0,
  };
  return table;
}

}  // namespace troupe::engine::cpu::detail
