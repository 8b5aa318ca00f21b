// Element-wise ops of the forward pass: embedding row lookup, RMSNorm, rotary embedding,
// SwiGLU gating and residual add. All memory-light next to the matmuls; written for clarity.
#include <cmath>
#include <limits>
#include <vector>

#include "engine/kernels/cpu/kernels_impl.hpp"

namespace troupe::engine::cpu {

void dequantize_row(const weight_matrix& w, int64_t row, float* out) {
  detail::table_for(detail::best_level()).convert(w, row, 0, w.cols, out);
}

void rms_norm(const float* x, const float* gamma, int64_t n, int64_t dim, float eps, float* out) {
  for (int64_t t = 0; t < n; ++t) {
    const float* v = x + t * dim;
    float* o = out + t * dim;
    // Double accumulation: activations can reach 1e3 with dim 8192, where an f32 sum of squares
    // loses digits the normalisation then multiplies into every element.
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += double(v[i]) * double(v[i]);
    const float scale = float(1.0 / std::sqrt(ss / double(dim) + double(eps)));
    for (int64_t i = 0; i < dim; ++i) o[i] = v[i] * scale * gamma[i];
  }
}

void rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, std::span<const int32_t> pos,
          std::span<const float> inv_freq, bool interleaved) {
  const int64_t half = head_dim / 2;
  std::vector<float> cos_t(static_cast<size_t>(half)), sin_t(static_cast<size_t>(half));
  for (int64_t t = 0; t < n; ++t) {
    // Angles in double: pos * inv_freq reaches ~1e5 rad at long context, where an f32 product
    // would be off by ~1e-2 rad.
    for (int64_t i = 0; i < half; ++i) {
      const double angle = double(pos[size_t(t)]) * double(inv_freq[size_t(i)]);
      cos_t[size_t(i)] = float(std::cos(angle));
      sin_t[size_t(i)] = float(std::sin(angle));
    }
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + (t * n_heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const int64_t a = interleaved ? 2 * i : i;
        const int64_t b = interleaved ? 2 * i + 1 : i + half;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * cos_t[size_t(i)] - x1 * sin_t[size_t(i)];
        v[b] = x0 * sin_t[size_t(i)] + x1 * cos_t[size_t(i)];
      }
    }
  }
}

namespace detail {

double log_sum_exp_scalar(const float* x, int64_t count) {
  // A NaN anywhere makes the sum NaN; a +inf max, or a max of -inf, makes it exp(NaN).
  float mx = x[0];
  for (int64_t i = 1; i < count; ++i) mx = x[i] > mx ? x[i] : mx;
  double sum = 0;
  for (int64_t i = 0; i < count; ++i) sum += std::exp(x[i] - mx);
  return double(mx) + std::log(sum);
}

void silu_mul_scalar(const float* gate, const float* up, int64_t count, float* out) {
  for (int64_t i = 0; i < count; ++i) {
    const float g = gate[i];
    out[i] = g / (1.f + std::exp(-g)) * up[i];
  }
}

}  // namespace detail

void silu_mul(const float* gate, const float* up, int64_t count, float* out) {
  detail::table_for(detail::best_level()).silu_mul(gate, up, count, out);
}

void add(float* acc, const float* x, int64_t count) {
  for (int64_t i = 0; i < count; ++i) acc[i] += x[i];
}

double log_sum_exp(std::span<const float> x) {
  if (x.empty()) return std::numeric_limits<double>::quiet_NaN();
  return detail::table_for(detail::best_level()).log_sum_exp(x.data(), int64_t(x.size()));
}

}  // namespace troupe::engine::cpu
