// backend implemented with engine/kernels/cpu.
#include "engine/cpu_backend.hpp"

#include <array>
#include <cstdio>
#include <cstring>
#include <vector>

#include "engine/kernels/cpu/kernels.hpp"

namespace troupe::engine {

namespace {

class cpu_weight final : public device_weight {
 public:
  cpu::weight_matrix m{};
  std::vector<float> owned;  // 1-D tensors converted to f32
};

const cpu_weight& as_cpu(const device_weight& w) { return static_cast<const cpu_weight&>(w); }

class cpu_act_buffer final : public act_buffer {
 public:
  cpu_act_buffer(int64_t rows, int64_t cols) : rows_(rows), cols_(cols), data_(size_t(rows * cols)) {}
  [[nodiscard]] act view() const override { return {const_cast<float*>(data_.data()), rows_, cols_}; }

 private:
  int64_t rows_, cols_;
  std::vector<float> data_;
};

// K and V per layer, [capacity, kv_dim] f32 each.
class cpu_kv_store final : public kv_store {
 public:
  cpu_kv_store(int64_t n_layers, int64_t capacity, int64_t kv_dim)
      : capacity_(capacity), kv_dim_(kv_dim), n_layers_(n_layers),
        data_(size_t(n_layers * 2 * capacity * kv_dim)) {}
  [[nodiscard]] int64_t capacity() const override { return capacity_; }
  [[nodiscard]] size_t bytes_per_token() const override { return size_t(n_layers_ * 2 * kv_dim_) * sizeof(float); }
  float* k(int64_t layer) { return data_.data() + (layer * 2) * capacity_ * kv_dim_; }
  float* v(int64_t layer) { return data_.data() + (layer * 2 + 1) * capacity_ * kv_dim_; }
  const float* k(int64_t layer) const { return data_.data() + (layer * 2) * capacity_ * kv_dim_; }
  const float* v(int64_t layer) const { return data_.data() + (layer * 2 + 1) * capacity_ * kv_dim_; }
  int64_t kv_dim() const { return kv_dim_; }

 private:
  int64_t capacity_, kv_dim_, n_layers_;
  std::vector<float> data_;
};

// K and V per layer in blocks: layer l's K is [num_blocks, block_size, kv_dim] at k(l), V likewise.
class cpu_paged_kv final : public paged_kv {
 public:
  cpu_paged_kv(int64_t n_layers, int64_t num_blocks, int64_t block_size, int64_t kv_dim)
      : num_blocks_(num_blocks), block_size_(block_size), kv_dim_(kv_dim), n_layers_(n_layers),
        data_(size_t(n_layers * 2 * num_blocks * block_size * kv_dim)) {}
  [[nodiscard]] int64_t num_blocks() const override { return num_blocks_; }
  [[nodiscard]] int64_t block_size() const override { return block_size_; }
  [[nodiscard]] size_t bytes_per_block() const override {
    return size_t(n_layers_ * 2 * block_size_ * kv_dim_) * sizeof(float);
  }
  [[nodiscard]] int64_t layer_floats() const { return num_blocks_ * block_size_ * kv_dim_; }
  float* k(int64_t layer) { return data_.data() + (layer * 2) * layer_floats(); }
  float* v(int64_t layer) { return data_.data() + (layer * 2 + 1) * layer_floats(); }
  const float* k(int64_t layer) const { return data_.data() + (layer * 2) * layer_floats(); }
  const float* v(int64_t layer) const { return data_.data() + (layer * 2 + 1) * layer_floats(); }
  [[nodiscard]] int64_t kv_dim() const { return kv_dim_; }
  [[nodiscard]] int64_t n_layers() const { return n_layers_; }

 private:
  int64_t num_blocks_, block_size_, kv_dim_, n_layers_;
  std::vector<float> data_;
};

class cpu_backend final : public backend {
 public:
  explicit cpu_backend(int n_threads) : pool_(n_threads) {}

  [[nodiscard]] std::string_view name() const override { return "cpu"; }

  // MemAvailable from /proc/meminfo (free memory plus what the kernel can reclaim), 0 if unknown.
  [[nodiscard]] int64_t available_memory() const override {
    std::FILE* f = std::fopen("/proc/meminfo", "r");
    if (f == nullptr) return 0;
    char line[256];
    long long kib = 0;
    while (std::fgets(line, sizeof line, f) != nullptr) {
      if (std::sscanf(line, "MemAvailable: %lld kB", &kib) == 1) break;
    }
    std::fclose(f);
    return int64_t(kib) * 1024;
  }

  expected<std::unique_ptr<device_weight>> upload(const tensor_view& t) override {
    auto w = std::make_unique<cpu_weight>();
    if (t.shape.size() == 1) {
      w->owned.resize(size_t(t.shape[0]));
      cpu::weight_matrix view{t.data, t.type, 1, t.shape[0]};
      cpu::dequantize_row(view, 0, w->owned.data());
      w->m = {w->owned.data(), dtype::f32, 1, t.shape[0]};
    } else if (t.shape.size() == 2) {
      w->m = {t.data, t.type, t.shape[0], t.shape[1]};
    } else {
      return fail("tensor '" + t.name + "': the CPU backend takes 1-D or 2-D weights");
    }
    return std::unique_ptr<device_weight>(std::move(w));
  }

  std::unique_ptr<act_buffer> alloc(int64_t rows, int64_t cols) override {
    return std::make_unique<cpu_act_buffer>(rows, cols);
  }

  expected<std::unique_ptr<kv_store>> alloc_kv(int64_t n_layers, int64_t capacity, int64_t kv_dim) override {
    const double bytes = double(n_layers) * 2 * double(capacity) * double(kv_dim) * sizeof(float);
    if (bytes > 64e9) return fail("KV cache of " + std::to_string(capacity) + " tokens needs " +
                                  std::to_string(int64_t(bytes / 1e9)) + " GB; lower the context");
    return std::unique_ptr<kv_store>(std::make_unique<cpu_kv_store>(n_layers, capacity, kv_dim));
  }

  expected<std::unique_ptr<paged_kv>> alloc_paged_kv(int64_t n_layers, int64_t num_blocks, int64_t block_size,
                                                      int64_t kv_dim) override {
    const double bytes = double(n_layers) * 2 * double(num_blocks) * double(block_size) * double(kv_dim) * sizeof(float);
    if (num_blocks < 1 || block_size < 1) return fail("paged KV cache: num_blocks and block_size must be positive");
    if (bytes > 64e9) return fail("paged KV cache of " + std::to_string(num_blocks) + " blocks needs " +
                                  std::to_string(int64_t(bytes / 1e9)) + " GB");
    return std::unique_ptr<paged_kv>(std::make_unique<cpu_paged_kv>(n_layers, num_blocks, block_size, kv_dim));
  }

  void embed(const device_weight& table, std::span<const int32_t> ids, act out) override {
    const auto& w = as_cpu(table).m;
    for (size_t i = 0; i < ids.size(); ++i) cpu::dequantize_row(w, ids[i], out.data + int64_t(i) * out.cols);
  }

  void rms_norm(act x, const device_weight& gamma, float eps, act out) override {
    const auto* g = static_cast<const float*>(as_cpu(gamma).m.data);
    over_rows(x.rows, [&](int64_t rb, int64_t re) {
      cpu::rms_norm(x.data + rb * x.cols, g, re - rb, x.cols, eps, out.data + rb * out.cols);
    });
  }

  void matmul(act x, const device_weight& w, const device_weight* bias, act y) override {
    const float* b = bias ? static_cast<const float*>(as_cpu(*bias).m.data) : nullptr;
    cpu::matmul(pool_, x.data, x.rows, as_cpu(w).m, b, y.data);
  }

  void matmul_group(act x, std::span<const matmul_job> jobs) override {
    std::array<cpu::matmul_target, 8> targets{};
    if (jobs.size() > targets.size()) return backend::matmul_group(x, jobs);
    for (size_t i = 0; i < jobs.size(); ++i)
      targets[i] = {&as_cpu(*jobs[i].w).m, jobs[i].bias ? static_cast<const float*>(as_cpu(*jobs[i].bias).m.data) : nullptr,
                    jobs[i].y.data};
    cpu::matmul_many(pool_, x.data, x.rows, std::span(targets).first(jobs.size()));
  }

  void rope(act x, int64_t n_heads, int64_t head_dim, std::span<const int32_t> pos,
            std::span<const float> inv_freq, bool interleaved) override {
    over_rows(x.rows, [&](int64_t rb, int64_t re) {
      cpu::rope(x.data + rb * x.cols, re - rb, n_heads, head_dim, pos.subspan(size_t(rb), size_t(re - rb)), inv_freq,
                interleaved);
    });
  }

  void write_kv(kv_store& kv, int64_t layer, std::span<const int32_t> pos, act k, act v) override {
    auto& s = static_cast<cpu_kv_store&>(kv);
    const int64_t d = s.kv_dim();
    for (size_t i = 0; i < pos.size(); ++i) {
      std::memcpy(s.k(layer) + pos[i] * d, k.data + int64_t(i) * d, size_t(d) * sizeof(float));
      std::memcpy(s.v(layer) + pos[i] * d, v.data + int64_t(i) * d, size_t(d) * sizeof(float));
    }
  }

  void attention(act q, const kv_store& kv, int64_t layer, std::span<const int32_t> pos, int64_t n_heads,
                 int64_t n_kv_heads, int64_t head_dim, act out) override {
    const auto& s = static_cast<const cpu_kv_store&>(kv);
    const int64_t kv_len = pos.empty() ? 0 : int64_t(pos.back()) + 1;
    cpu::attention(pool_, q.data, q.rows, pos, s.k(layer), s.v(layer), kv_len, n_heads, n_kv_heads, head_dim,
                   out.data);
  }

  void write_paged_kv(paged_kv& kv, int64_t layer, const paged_batch& b, act k, act v) override {
    auto& s = static_cast<cpu_paged_kv&>(kv);
    const int64_t d = s.kv_dim(), bs = s.block_size();
    for (size_t i = 0; i < b.pos.size(); ++i) {
      const std::span<const int32_t> table = b.tables[size_t(b.token_seq[i])];
      const int64_t row = int64_t(table[size_t(b.pos[i] / bs)]) * bs + b.pos[i] % bs;
      std::memcpy(s.k(layer) + row * d, k.data + int64_t(i) * d, size_t(d) * sizeof(float));
      std::memcpy(s.v(layer) + row * d, v.data + int64_t(i) * d, size_t(d) * sizeof(float));
    }
  }

  void paged_attention(act q, const paged_kv& kv, int64_t layer, const paged_batch& b, int64_t n_heads,
                       int64_t n_kv_heads, int64_t head_dim, act out) override {
    const auto& s = static_cast<const cpu_paged_kv&>(kv);
    cpu::paged_attention_args a;
    a.q = q.data;
    a.out = out.data;
    a.n_tokens = q.rows;
    a.n_heads = n_heads;
    a.n_kv_heads = n_kv_heads;
    a.head_dim = head_dim;
    a.k_cache = s.k(layer);
    a.v_cache = s.v(layer);
    a.block_size = s.block_size();
    a.pos = b.pos;
    a.token_seq = b.token_seq;
    a.tables = b.tables;
    cpu::paged_attention(pool_, a);
  }

  void copy_kv_block(paged_kv& kv, int32_t src, int32_t dst) override {
    auto& s = static_cast<cpu_paged_kv&>(kv);
    const int64_t floats = s.block_size() * s.kv_dim();
    for (int64_t l = 0; l < s.n_layers(); ++l) {
      std::memcpy(s.k(l) + dst * floats, s.k(l) + src * floats, size_t(floats) * sizeof(float));
      std::memcpy(s.v(l) + dst * floats, s.v(l) + src * floats, size_t(floats) * sizeof(float));
    }
  }

  void gather_rows(act x, std::span<const int32_t> rows, act out) override {
    for (size_t i = 0; i < rows.size(); ++i)
      std::memcpy(out.data + int64_t(i) * out.cols, x.data + int64_t(rows[i]) * x.cols, size_t(x.cols) * sizeof(float));
  }

  void silu_mul(act gate, act up) override {
    over_rows(gate.rows, [&](int64_t rb, int64_t re) {
      cpu::silu_mul(gate.data + rb * gate.cols, up.data + rb * up.cols, (re - rb) * gate.cols, gate.data + rb * gate.cols);
    });
  }

  void add(act acc, act x) override {
    over_rows(acc.rows, [&](int64_t rb, int64_t re) {
      cpu::add(acc.data + rb * acc.cols, x.data + rb * x.cols, (re - rb) * acc.cols);
    });
  }

  // Element-wise ops over many tokens (prefill) are split by rows across the pool; one token
  // (decode) runs on the calling thread, where a dispatch would cost more than the work.
  template <class Fn>
  void over_rows(int64_t rows, const Fn& fn) {
    if (rows < 2) {
      fn(0, rows);
      return;
    }
    pool_.parallel_for(rows, 1, [&fn](int, int64_t rb, int64_t re) {
      if (rb < re) fn(rb, re);
    });
  }

  void to_host(act x, std::span<float> out) override {
    std::memcpy(out.data(), x.data, size_t(x.rows * x.cols) * sizeof(float));
  }

 private:
  cpu::thread_pool pool_;
};

}  // namespace

std::unique_ptr<backend> make_cpu_backend(int n_threads) { return std::make_unique<cpu_backend>(n_threads); }

}  // namespace troupe::engine
