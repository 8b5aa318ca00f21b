// Shape checks and rotary frequencies for model_config.
#include "engine/model/model_config.hpp"

#include <cmath>
#include <numbers>

namespace troupe::engine {

std::optional<std::string> check_config(const model_config& c, const std::string& source) {
  auto bad = [&source](const char* field, int64_t v, const char* why) {
    return source + ": " + field + " = " + std::to_string(v) + " " + why;
  };
  constexpr int64_t max_dim = 1 << 20;  // far beyond any real model; keeps products in range
  if (c.n_layers <= 0 || c.n_layers > 4096) return bad("num_hidden_layers", c.n_layers, "must be in [1, 4096]");
  if (c.dim <= 0 || c.dim > max_dim) return bad("hidden_size", c.dim, "must be in [1, 2^20]");
  if (c.n_heads <= 0 || c.n_heads > 4096) return bad("num_attention_heads", c.n_heads, "must be in [1, 4096]");
  if (c.n_kv_heads <= 0 || c.n_kv_heads > c.n_heads)
    return bad("num_key_value_heads", c.n_kv_heads, "must be in [1, num_attention_heads]");
  if (c.n_heads % c.n_kv_heads != 0)
    return bad("num_key_value_heads", c.n_kv_heads, "must divide num_attention_heads");
  if (c.head_dim <= 0 || c.head_dim > 4096 || c.head_dim % 2 != 0)
    return bad("head_dim", c.head_dim, "must be even and in [2, 4096]");
  if (c.ffn_dim <= 0 || c.ffn_dim > max_dim) return bad("intermediate_size", c.ffn_dim, "must be in [1, 2^20]");
  if (c.vocab_size <= 0 || c.vocab_size > (1 << 24)) return bad("vocab_size", c.vocab_size, "must be in [1, 2^24]");
  if (c.max_position <= 0 || c.max_position > (1 << 24))
    return bad("max_position_embeddings", c.max_position, "must be in [1, 2^24]");
  if (!(c.rms_eps > 0.0f) || !std::isfinite(c.rms_eps)) return source + ": rms_norm_eps must be positive";
  if (!(c.rope_theta > 0.0f) || !std::isfinite(c.rope_theta)) return source + ": rope_theta must be positive";
  if (c.rope_scaling) {
    const auto& s = *c.rope_scaling;
    if (!(s.factor >= 1.0f) || !(s.low_freq_factor > 0.0f) || !(s.high_freq_factor > s.low_freq_factor) ||
        s.original_max_position <= 0)
      return source + ": rope_scaling (llama3) needs factor >= 1, 0 < low_freq_factor < high_freq_factor, "
                      "original_max_position_embeddings > 0";
  }
  return std::nullopt;
}

std::vector<float> rope_inv_freq(const model_config& c, const std::vector<float>* freq_factors) {
  const int64_t half = c.head_dim / 2;
  std::vector<float> inv(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    double f = std::pow(double(c.rope_theta), -double(2 * i) / double(c.head_dim));
    if (c.rope_scaling) {
      // Llama 3.1 scaling, as in Meta's reference and HF's _compute_llama3_parameters.
      const auto& s = *c.rope_scaling;
      const double low_wavelen = double(s.original_max_position) / s.low_freq_factor;
      const double high_wavelen = double(s.original_max_position) / s.high_freq_factor;
      const double wavelen = 2.0 * std::numbers::pi / f;
      if (wavelen > low_wavelen) {
        f /= s.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = (double(s.original_max_position) / wavelen - s.low_freq_factor) /
                              (s.high_freq_factor - s.low_freq_factor);
        f = (1.0 - smooth) * f / s.factor + smooth * f;
      }
    }
    if (freq_factors && size_t(i) < freq_factors->size()) f /= double((*freq_factors)[size_t(i)]);
    inv[size_t(i)] = float(f);
  }
  return inv;
}

}  // namespace troupe::engine
