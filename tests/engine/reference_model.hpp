// An independent, plain double-precision Llama-family forward pass for tests. It reads a Hugging
// Face folder with its own minimal safetensors reader and shares no code with the engine, so the
// engine's loaders, kernels and forward pass are all checked against it. A BF16 matrix multiplies
// its input rounded to bf16 (from f32, to nearest even), as the engine defines for bf16 weights;
// everything else is exact.
#pragma once

#include <simdjson.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <numbers>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace troupe::test {

class reference_model {
 public:
  explicit reference_model(const std::string& dir) {
    simdjson::dom::parser p;
    simdjson::dom::element cfg = p.load(dir + "/config.json");
    arch_ = std::string(std::string_view(cfg["model_type"]));
    layers_ = int64_t(cfg["num_hidden_layers"]);
    dim_ = int64_t(cfg["hidden_size"]);
    heads_ = int64_t(cfg["num_attention_heads"]);
    kv_heads_ = int64_t(cfg["num_key_value_heads"]);
    ffn_ = int64_t(cfg["intermediate_size"]);
    vocab_ = int64_t(cfg["vocab_size"]);
    head_dim_ = dim_ / heads_;
    eps_ = double(cfg["rms_norm_eps"]);
    theta_ = double(cfg["rope_theta"]);
    tied_ = bool(cfg["tie_word_embeddings"]);
    simdjson::dom::object scaling;
    if (cfg["rope_scaling"].get_object().get(scaling) == simdjson::SUCCESS) {
      scaled_ = true;
      factor_ = double(scaling["factor"]);
      low_ = double(scaling["low_freq_factor"]);
      high_ = double(scaling["high_freq_factor"]);
      orig_ = double(int64_t(scaling["original_max_position_embeddings"]));
    }
    std::ifstream idx(dir + "/model.safetensors.index.json");
    if (idx) {
      simdjson::dom::parser ip;
      simdjson::dom::element e = ip.load(dir + "/model.safetensors.index.json");
      std::map<std::string, bool> files;
      for (auto [k, v] : simdjson::dom::object(e["weight_map"])) files[std::string(std::string_view(v))] = true;
      for (auto& [f, unused] : files) read_safetensors(dir + "/" + f);
    } else {
      read_safetensors(dir + "/model.safetensors");
    }
  }

  int64_t vocab() const { return vocab_; }

  // Logits [vocab] after each of `tokens` (positions 0..n-1), causal.
  std::vector<std::vector<double>> logits(const std::vector<int32_t>& tokens) const {
    const int64_t n = int64_t(tokens.size());
    const int64_t qd = heads_ * head_dim_, kvd = kv_heads_ * head_dim_;
    std::vector<std::vector<double>> x(static_cast<size_t>(n));
    for (int64_t t = 0; t < n; ++t) x[size_t(t)] = row(w("model.embed_tokens.weight"), tokens[size_t(t)], dim_);
    for (int64_t l = 0; l < layers_; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      std::vector<std::vector<double>> K(static_cast<size_t>(n)), V(static_cast<size_t>(n)), Q(static_cast<size_t>(n));
      for (int64_t t = 0; t < n; ++t) {
        auto h = rms(x[size_t(t)], w(p + "input_layernorm.weight"));
        Q[size_t(t)] = linear(h, p + "self_attn.q_proj", qd);
        K[size_t(t)] = linear(h, p + "self_attn.k_proj", kvd);
        V[size_t(t)] = linear(h, p + "self_attn.v_proj", kvd);
        rotate(Q[size_t(t)], heads_, t);
        rotate(K[size_t(t)], kv_heads_, t);
      }
      for (int64_t t = 0; t < n; ++t) {
        std::vector<double> att(size_t(qd), 0.0);
        for (int64_t h = 0; h < heads_; ++h) {
          const int64_t kh = h / (heads_ / kv_heads_);
          std::vector<double> s(size_t(t + 1));
          double mx = -1e300;
          for (int64_t j = 0; j <= t; ++j) {
            double d = 0;
            for (int64_t i = 0; i < head_dim_; ++i)
              d += Q[size_t(t)][size_t(h * head_dim_ + i)] * K[size_t(j)][size_t(kh * head_dim_ + i)];
            s[size_t(j)] = d / std::sqrt(double(head_dim_));
            mx = std::max(mx, s[size_t(j)]);
          }
          double z = 0;
          for (auto& v : s) z += (v = std::exp(v - mx));
          for (int64_t j = 0; j <= t; ++j)
            for (int64_t i = 0; i < head_dim_; ++i)
              att[size_t(h * head_dim_ + i)] += s[size_t(j)] / z * V[size_t(j)][size_t(kh * head_dim_ + i)];
        }
        auto o = matvec(p + "self_attn.o_proj.weight", att, dim_);
        for (int64_t i = 0; i < dim_; ++i) x[size_t(t)][size_t(i)] += o[size_t(i)];
        auto h = rms(x[size_t(t)], w(p + "post_attention_layernorm.weight"));
        auto g = matvec(p + "mlp.gate_proj.weight", h, ffn_);
        auto u = matvec(p + "mlp.up_proj.weight", h, ffn_);
        for (int64_t i = 0; i < ffn_; ++i) g[size_t(i)] = g[size_t(i)] / (1.0 + std::exp(-g[size_t(i)])) * u[size_t(i)];
        auto d = matvec(p + "mlp.down_proj.weight", g, dim_);
        for (int64_t i = 0; i < dim_; ++i) x[size_t(t)][size_t(i)] += d[size_t(i)];
      }
    }
    std::vector<std::vector<double>> out;
    const std::string head = tied_ ? "model.embed_tokens.weight" : "lm_head.weight";
    for (int64_t t = 0; t < n; ++t) out.push_back(matvec(head, rms(x[size_t(t)], w("model.norm.weight")), vocab_));
    return out;
  }

 private:
  const std::vector<double>& w(const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) throw std::runtime_error("reference: missing tensor " + name);
    return it->second;
  }
  static std::vector<double> row(const std::vector<double>& m, int64_t r, int64_t cols) {
    return {m.begin() + r * cols, m.begin() + (r + 1) * cols};
  }
  // The engine's activations are f32; bf16 keeps the top 16 bits, rounded to nearest even.
  static double to_bf16(double v) {
    const float f = float(v);
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if (std::isnan(f)) return v;
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    float r;
    std::memcpy(&r, &u, 4);
    return r;
  }
  std::vector<double> matvec(const std::string& name, const std::vector<double>& x, int64_t rows) const {
    const std::vector<double>& m = w(name);
    std::vector<double> in = x;
    if (bf16_.count(name) != 0)
      for (double& v : in) v = to_bf16(v);
    const int64_t cols = int64_t(in.size());
    std::vector<double> y(size_t(rows), 0.0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) y[size_t(r)] += m[size_t(r * cols + c)] * in[size_t(c)];
    return y;
  }
  std::vector<double> linear(const std::vector<double>& x, const std::string& name, int64_t rows) const {
    auto y = matvec(name + ".weight", x, rows);
    if (auto it = tensors_.find(name + ".bias"); it != tensors_.end())
      for (int64_t i = 0; i < rows; ++i) y[size_t(i)] += it->second[size_t(i)];
    return y;
  }
  std::vector<double> rms(const std::vector<double>& x, const std::vector<double>& g) const {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double inv = 1.0 / std::sqrt(ss / double(x.size()) + eps_);
    std::vector<double> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * g[i];
    return y;
  }
  // HF rotate_half: pairs (i, i + d/2), frequencies theta^(-2i/d), Llama 3.1 scaling when configured.
  void rotate(std::vector<double>& v, int64_t n_heads, int64_t pos) const {
    const int64_t half = head_dim_ / 2;
    for (int64_t i = 0; i < half; ++i) {
      double f = 1.0 / std::pow(theta_, double(2 * i) / double(head_dim_));
      if (scaled_) {
        const double wavelen = 2 * std::numbers::pi / f;
        if (wavelen > orig_ / low_) f = f / factor_;
        else if (wavelen >= orig_ / high_) {
          const double sm = (orig_ / wavelen - low_) / (high_ - low_);
          f = (1 - sm) * f / factor_ + sm * f;
        }
      }
      const double a = double(pos) * f, c = std::cos(a), s = std::sin(a);
      for (int64_t h = 0; h < n_heads; ++h) {
        double& x0 = v[size_t(h * head_dim_ + i)];
        double& x1 = v[size_t(h * head_dim_ + i + half)];
        const double r0 = x0 * c - x1 * s, r1 = x1 * c + x0 * s;
        x0 = r0;
        x1 = r1;
      }
    }
  }
  static double half_to_double(uint16_t h) {
    const int e = (h >> 10) & 31, m = h & 1023;
    const double s = (h & 0x8000) ? -1.0 : 1.0;
    if (e == 0) return s * std::ldexp(double(m), -24);
    if (e == 31) return m ? NAN : s * INFINITY;
    return s * std::ldexp(double(m | 1024), e - 25);
  }
  void read_safetensors(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    uint64_t n = 0;
    f.read(reinterpret_cast<char*>(&n), 8);
    std::string header(n, '\0');
    f.read(header.data(), std::streamsize(n));
    std::vector<char> data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    simdjson::dom::parser p;
    simdjson::dom::element doc = p.parse(header);
    for (auto [name, info] : simdjson::dom::object(doc)) {
      if (name == "__metadata__") continue;
      const std::string_view dt = info["dtype"];
      simdjson::dom::array offs = info["data_offsets"];
      const uint64_t b = uint64_t(offs.at(0)), e = uint64_t(offs.at(1));
      std::vector<double> v;
      const char* src = data.data() + b;
      if (dt == "F32") {
        for (uint64_t i = 0; i < (e - b) / 4; ++i) {
          float x;
          std::memcpy(&x, src + 4 * i, 4);
          v.push_back(x);
        }
      } else {
        for (uint64_t i = 0; i < (e - b) / 2; ++i) {
          uint16_t h;
          std::memcpy(&h, src + 2 * i, 2);
          if (dt == "BF16") {
            uint32_t u = uint32_t(h) << 16;
            float x;
            std::memcpy(&x, &u, 4);
            v.push_back(x);
          } else {
            v.push_back(half_to_double(h));
          }
        }
      }
      if (dt == "BF16") bf16_.insert(std::string(name));
      tensors_[std::string(name)] = std::move(v);
    }
  }

  std::string arch_;
  int64_t layers_, dim_, heads_, kv_heads_, ffn_, vocab_, head_dim_;
  double eps_, theta_;
  bool tied_ = false, scaled_ = false;
  double factor_ = 1, low_ = 1, high_ = 4, orig_ = 8192;
  std::map<std::string, std::vector<double>> tensors_;
  std::set<std::string> bf16_;  // names of the BF16 tensors
};

}  // namespace troupe::test
