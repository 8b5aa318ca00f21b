// The CUDA backend (see cuda_backend.hpp).
#include "engine/kernels/cuda/cuda_backend.hpp"

#include <spdlog/spdlog.h>
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <type_traits>
#include <unordered_map>
#include <optional>
#include <tuple>
#include <vector>

#include "engine/kernels/cpu/kernels.hpp"
#include "engine/kernels/cuda/attention.hpp"
#include "engine/kernels/cuda/cuda_check.hpp"
#include "engine/kernels/cuda/elementwise.hpp"
#include "engine/kernels/cuda/norm.hpp"
#include "engine/kernels/cuda/rope.hpp"
#include "engine/kernels/cuda/sampling.hpp"

namespace troupe::engine {

namespace {

using cuda::cuda_error;
std::string cublas_error(const char* what, cublasStatus_t s) { return cuda::cublas_error(what, int(s)); }

// Device memory freed on destruction.
struct device_buffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  device_buffer() = default;
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  ~device_buffer() {
    if (ptr) cudaFree(ptr);
  }
  [[nodiscard]] expected<void> allocate(size_t n) {
    if (ptr) cudaFree(ptr);
    ptr = nullptr;
    bytes = 0;
    if (n == 0) return {};
    if (auto e = cudaMalloc(&ptr, n); e != cudaSuccess) {
      (void)cudaGetLastError();
      ptr = nullptr;
      return fail(cuda_error(("cudaMalloc(" + std::to_string(n) + " bytes)").c_str(), e));
    }
    bytes = n;
    return {};
  }
};

class cuda_weight final : public device_weight {
 public:
  device_buffer mem;
  bool bf16 = false;  // matrices; 1-D tensors are f32
  int64_t rows = 0, cols = 0;
};
const cuda_weight& as_cuda(const device_weight& w) { return static_cast<const cuda_weight&>(w); }

class cuda_act_buffer final : public act_buffer {
 public:
  device_buffer mem;
  int64_t rows = 0, cols = 0;
  [[nodiscard]] act view() const override { return {static_cast<float*>(mem.ptr), rows, cols}; }
};

// Per layer K then V, each [blocks + spare, block_size, kv_dim] f32: the blocks the engine manages,
// then (for a paged cache) one spare block that the padding tokens of a captured decode graph write.
class cuda_paged_kv final : public paged_kv {
 public:
  device_buffer mem;
  int64_t layers = 0, blocks = 0, block = 0, kv_dim = 0, spare = 0;
  [[nodiscard]] int64_t num_blocks() const override { return blocks; }
  [[nodiscard]] int32_t spare_block() const override { return spare > 0 ? int32_t(blocks) : -1; }
  [[nodiscard]] int64_t block_size() const override { return block; }
  [[nodiscard]] size_t bytes_per_block() const override { return size_t(layers * 2 * block * kv_dim) * sizeof(float); }
  [[nodiscard]] float* k(int64_t layer) const {
    return static_cast<float*>(mem.ptr) + (layer * 2) * (blocks + spare) * block * kv_dim;
  }
  [[nodiscard]] float* v(int64_t layer) const {
    return static_cast<float*>(mem.ptr) + (layer * 2 + 1) * (blocks + spare) * block * kv_dim;
  }
};

// One sequence's cache: a paged cache of one block of `capacity` positions.
class cuda_kv_store final : public kv_store {
 public:
  cuda_paged_kv paged;
  [[nodiscard]] int64_t capacity() const override { return paged.block; }
  [[nodiscard]] size_t bytes_per_token() const override { return size_t(paged.layers * 2 * paged.kv_dim) * sizeof(float); }
};

// A device copy of small host arrays, re-uploaded only when the contents change.
template <class T>
class device_mirror {
 public:
  // The device copy of `values`, enqueued on `stream` when it differs from the last one. While a
  // CUDA graph is being captured (may_upload false) the values must be the ones already uploaded.
  [[nodiscard]] expected<const T*> sync(std::span<const T> values, cudaStream_t stream, bool may_upload = true) {
    if (values.size() == host_.size() && uploaded_ &&
        (values.empty() || std::memcmp(values.data(), host_.data(), values.size_bytes()) == 0))
      return static_cast<const T*>(mem_.ptr);
    if (!may_upload) return fail("CUDA graph capture: a step input changed between staging and capture");
    if (values.size_bytes() > mem_.bytes) {
      if (auto ok = mem_.allocate(std::max<size_t>(values.size_bytes() * 2, 256)); !ok) return ok.err();
    }
    host_.assign(values.begin(), values.end());
    if (!values.empty()) {
      // From pageable memory the copy is staged before the call returns, so host_ may change after.
      if (auto e = cudaMemcpyAsync(mem_.ptr, host_.data(), values.size_bytes(), cudaMemcpyHostToDevice, stream);
          e != cudaSuccess)
        return fail(cuda_error("cudaMemcpyAsync (upload)", e));
    }
    uploaded_ = true;
    return static_cast<const T*>(mem_.ptr);
  }

 private:
  device_buffer mem_;
  std::vector<T> host_;
  bool uploaded_ = false;
};

uint16_t to_bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);                                           // round to nearest even
  return uint16_t(u >> 16);
}

class cuda_backend final : public backend {
 public:
  cuda_backend(int device, cudaStream_t stream, cublasLtHandle_t lt) : device_(device), stream_(stream), lt_(lt) {}

  // cuBLASLt's workspace; called once after construction.
  [[nodiscard]] expected<void> init() {
    if (auto e = cudaDeviceGetAttribute(&sm_count_, cudaDevAttrMultiProcessorCount, device_); e != cudaSuccess)
      return fail(cuda_error("cudaDeviceGetAttribute (multiprocessors)", e));
    return workspace_.allocate(size_t(32) << 20);
  }
  ~cuda_backend() override {
    cudaSetDevice(device_);
    cudaStreamSynchronize(stream_);
    drop_graphs();
    for (auto& [key, plan] : plans_) plan.destroy();
    cublasLtDestroy(lt_);
    cudaStreamDestroy(stream_);
  }

  [[nodiscard]] std::string_view name() const override { return "cuda"; }
  [[nodiscard]] void* native_stream() const override { return stream_; }

  [[nodiscard]] int64_t available_memory() const override {
    size_t free = 0, total = 0;
    if (cudaSetDevice(device_) != cudaSuccess || cudaMemGetInfo(&free, &total) != cudaSuccess) {
      (void)cudaGetLastError();
      return 0;
    }
    return int64_t(free);
  }

  expected<std::unique_ptr<device_weight>> upload(const tensor_view& t) override {
    if (t.shape.empty() || t.shape.size() > 2) return fail("tensor '" + t.name + "': the CUDA backend takes 1-D or 2-D weights");
    auto w = std::make_unique<cuda_weight>();
    w->rows = t.rows();
    w->cols = t.cols();
    w->bf16 = t.shape.size() == 2;
    const cpu::weight_matrix src{t.data, t.type, w->rows, w->cols};
    std::vector<float> row(size_t(w->cols));
    if (w->bf16) {
      std::vector<uint16_t> host(size_t(w->rows * w->cols));
      for (int64_t r = 0; r < w->rows; ++r) {
        cpu::dequantize_row(src, r, row.data());
        for (int64_t c = 0; c < w->cols; ++c) host[size_t(r * w->cols + c)] = to_bf16_bits(row[size_t(c)]);
      }
      if (auto ok = w->mem.allocate(host.size() * 2); !ok) return fail("tensor '" + t.name + "': " + ok.message());
      if (auto e = cudaMemcpy(w->mem.ptr, host.data(), host.size() * 2, cudaMemcpyHostToDevice); e != cudaSuccess)
        return fail("tensor '" + t.name + "': " + cuda_error("cudaMemcpy", e));
    } else {
      cpu::dequantize_row(src, 0, row.data());
      if (auto ok = w->mem.allocate(row.size() * 4); !ok) return fail("tensor '" + t.name + "': " + ok.message());
      if (auto e = cudaMemcpy(w->mem.ptr, row.data(), row.size() * 4, cudaMemcpyHostToDevice); e != cudaSuccess)
        return fail("tensor '" + t.name + "': " + cuda_error("cudaMemcpy", e));
    }
    return std::unique_ptr<device_weight>(std::move(w));
  }

  std::unique_ptr<act_buffer> alloc(int64_t rows, int64_t cols) override {
    auto b = std::make_unique<cuda_act_buffer>();
    b->rows = rows;
    b->cols = cols;
    record(b->mem.allocate(size_t(rows * cols) * sizeof(float)));
    return b;
  }

  expected<std::unique_ptr<kv_store>> alloc_kv(int64_t n_layers, int64_t capacity, int64_t kv_dim) override {
    auto s = std::make_unique<cuda_kv_store>();
    if (auto ok = init_paged(s->paged, n_layers, 1, capacity, kv_dim, 0); !ok) return ok.err();
    return std::unique_ptr<kv_store>(std::move(s));
  }

  expected<std::unique_ptr<paged_kv>> alloc_paged_kv(int64_t n_layers, int64_t num_blocks, int64_t block_size,
                                                      int64_t kv_dim) override {
    if (num_blocks < 1 || block_size < 1) return fail("paged KV cache: num_blocks and block_size must be positive");
    auto p = std::make_unique<cuda_paged_kv>();
    if (auto ok = init_paged(*p, n_layers, num_blocks, block_size, kv_dim, 1); !ok) return ok.err();
    return std::unique_ptr<paged_kv>(std::move(p));
  }

  void embed(const device_weight& table, std::span<const int32_t> ids, act out) override {
    auto d = ids_.sync(ids, stream_, may_upload());
    if (!record(d)) return;
    const auto& w = as_cuda(table);
    if (staged(&w, *d, ids.size(), out)) return;
    launched(cuda::launch_embed(static_cast<const __nv_bfloat16*>(w.mem.ptr), *d, int64_t(ids.size()), w.cols,
                                out.data, stream_),
             "embed");
  }

  void rms_norm(act x, const device_weight& gamma, float eps, act out) override {
    if (staged(x, &gamma, eps, out)) return;
    launched(cuda::launch_rms_norm(x.data, static_cast<const float*>(as_cuda(gamma).mem.ptr), x.rows, x.cols, eps,
                                   out.data, stream_),
             "rms_norm");
  }

  void matmul(act x, const device_weight& weight, const device_weight* bias, act y) override {
    const auto& w = as_cuda(weight);
    const int64_t n = x.rows, k = x.cols, m = w.rows;
    if (!w.bf16 || w.cols != k || y.cols != m) return record(fail("matmul: shapes or weight kind do not match"));
    const size_t need = size_t(n * k) * 2;
    if (need > x_bf16_.bytes && !record(x_bf16_.allocate(need * 2))) return;
    auto* xb = static_cast<__nv_bfloat16*>(x_bf16_.ptr);
    auto plan = plan_for(m, n, k);
    if (!record(plan)) return;
    if (staged(x, &w, bias, y, xb, *plan)) return;
    if (!launched(cuda::launch_f32_to_bf16(x.data, xb, n * k, stream_), "f32_to_bf16")) return;
    const float alpha = 1.0f, beta = 0.0f;
    const gemm_plan& p = **plan;
    const cublasStatus_t s = cublasLtMatmul(lt_, p.op, &alpha, w.mem.ptr, p.a, xb, p.b, &beta, y.data, p.c, y.data, p.c,
                                            &p.algo, workspace_.ptr, workspace_.bytes, stream_);
    if (s != CUBLAS_STATUS_SUCCESS) return record(fail(cublas_error("cublasLtMatmul", s)));
    if (bias != nullptr)
      launched(cuda::launch_add_bias(y.data, static_cast<const float*>(as_cuda(*bias).mem.ptr), n, m, stream_),
               "add_bias");
  }

  void rope(act x, int64_t n_heads, int64_t head_dim, std::span<const int32_t> pos, std::span<const float> inv_freq,
            bool interleaved) override {
    auto p = pos_.sync(pos, stream_, may_upload());
    if (!record(p)) return;
    auto f = inv_freq_.sync(inv_freq, stream_, may_upload());
    if (!record(f)) return;
    if (staged(x, n_heads, head_dim, *p, *f, interleaved)) return;
    launched(cuda::launch_rope(x.data, x.rows, n_heads, head_dim, *p, *f, interleaved, stream_), "rope");
  }

  void write_kv(kv_store& kv, int64_t layer, std::span<const int32_t> pos, act k, act v) override {
    auto& c = static_cast<cuda_kv_store&>(kv).paged;
    auto b = single_sequence(pos, c.block);
    if (!record(b)) return;
    if (staged(c.k(layer), *b, k, v)) return;
    launched(cuda::launch_write_paged_kv(c.k(layer), c.v(layer), *b, k.data, v.data, c.kv_dim, stream_),
             "write_kv");
  }

  void attention(act q, const kv_store& kv, int64_t layer, std::span<const int32_t> pos, int64_t n_heads,
                 int64_t n_kv_heads, int64_t head_dim, act out) override {
    const auto& c = static_cast<const cuda_kv_store&>(kv).paged;
    auto b = single_sequence(pos, c.block);
    if (!record(b)) return;
    attend(q, c, layer, *b, pos, n_heads, n_kv_heads, head_dim, out);
  }

  void write_paged_kv(paged_kv& kv, int64_t layer, const paged_batch& pb, act k, act v) override {
    auto& c = static_cast<cuda_paged_kv&>(kv);
    auto b = batch_args(pb, c.block);
    if (!record(b)) return;
    if (staged(c.k(layer), *b, k, v)) return;
    launched(cuda::launch_write_paged_kv(c.k(layer), c.v(layer), *b, k.data, v.data, c.kv_dim, stream_),
             "write_paged_kv");
  }

  void paged_attention(act q, const paged_kv& kv, int64_t layer, const paged_batch& pb, int64_t n_heads,
                       int64_t n_kv_heads, int64_t head_dim, act out) override {
    const auto& c = static_cast<const cuda_paged_kv&>(kv);
    auto b = batch_args(pb, c.block);
    if (!record(b)) return;
    attend(q, c, layer, *b, pb.pos, n_heads, n_kv_heads, head_dim, out);
  }

  void copy_kv_block(paged_kv& kv, int32_t src, int32_t dst) override {
    if (!eager("copy_kv_block")) return;
    auto& c = static_cast<cuda_paged_kv&>(kv);
    const size_t bytes = size_t(c.block * c.kv_dim) * sizeof(float);
    for (int64_t l = 0; l < c.layers; ++l) {
      for (float* base : {c.k(l), c.v(l)}) {
        const auto e = cudaMemcpyAsync(base + int64_t(dst) * c.block * c.kv_dim, base + int64_t(src) * c.block * c.kv_dim,
                                       bytes, cudaMemcpyDeviceToDevice, stream_);
        if (e != cudaSuccess) return record(fail(cuda_error("cudaMemcpyAsync (copy_kv_block)", e)));
      }
    }
  }

  void gather_rows(act x, std::span<const int32_t> rows, act out) override {
    auto d = rows_.sync(rows, stream_, may_upload());
    if (!record(d)) return;
    if (staged(x, *d, rows.size(), out)) return;
    launched(cuda::launch_gather_rows(x.data, *d, int64_t(rows.size()), x.cols, out.data, stream_), "gather_rows");
  }

  void silu_mul(act gate, act up) override {
    if (staged(gate, up)) return;
    launched(cuda::launch_silu_mul(gate.data, up.data, gate.rows * gate.cols, stream_), "silu_mul");
  }

  void add_rms_norm(act acc, act x, const device_weight& gamma, float eps, act out) override {
    if (staged(acc, x, &gamma, eps, out)) return;
    launched(cuda::launch_add_rms_norm(acc.data, x.data, static_cast<const float*>(as_cuda(gamma).mem.ptr), acc.rows,
                                       acc.cols, eps, out.data, stream_),
             "add_rms_norm");
  }

  void add(act acc, act x) override {
    if (staged(acc, x)) return;
    launched(cuda::launch_add(acc.data, x.data, acc.rows * acc.cols, stream_), "add");
  }

  [[nodiscard]] bool samples_on_device() const override { return true; }

  void sample(act logits, std::span<const device_sampling> rows, std::span<const penalty_entry> penalties,
              std::span<int32_t> ids) override {
    const size_t n = rows.size();
    if (n == 0 || !eager("sample")) return;
    if (ids.size() != n || logits.rows < int64_t(n)) return record(fail("sample: one id per row of logits"));
    sample_host_.assign(rows.begin(), rows.end());
    const size_t param_bytes = n * sizeof(cuda::sample_params), id_bytes = n * sizeof(int32_t);
    if (param_bytes > sample_params_.bytes && !record(sample_params_.allocate(param_bytes * 2))) return;
    if (id_bytes > sample_ids_.bytes && !record(sample_ids_.allocate(id_bytes * 2))) return;
    // From pageable memory the upload is staged before the call returns.
    if (auto e = cudaMemcpyAsync(sample_params_.ptr, sample_host_.data(), param_bytes, cudaMemcpyHostToDevice, stream_);
        e != cudaSuccess)
      return record(fail(cuda_error("cudaMemcpyAsync (sampling parameters)", e)));
    for (const auto& r : rows) {
      if (r.penalty_count < 0 || r.penalty_begin < 0 || size_t(r.penalty_begin) + size_t(r.penalty_count) > penalties.size())
        return record(fail("sample: a row's penalty entries are outside the list"));
    }
    const penalty_entry* dev_penalties = nullptr;
    if (!penalties.empty()) {
      auto d = penalties_.sync(penalties, stream_);
      if (!record(d)) return;
      dev_penalties = *d;
    }
    auto* dev_ids = static_cast<int32_t*>(sample_ids_.ptr);
    if (!launched(cuda::launch_sample(logits.data, int64_t(n), logits.cols,
                                      static_cast<const cuda::sample_params*>(sample_params_.ptr), dev_penalties,
                                      dev_ids, stream_),
                  "sample"))
      return;
    if (auto e = cudaMemcpyAsync(ids.data(), dev_ids, id_bytes, cudaMemcpyDeviceToHost, stream_); e != cudaSuccess)
      return record(fail(cuda_error("cudaMemcpyAsync (sampled ids)", e)));
    if (auto e = cudaStreamSynchronize(stream_); e != cudaSuccess)
      record(fail(cuda_error("the device failed while sampling (cudaStreamSynchronize)", e)));
  }

  void to_host(act x, std::span<float> out) override {
    if (!eager("to_host")) return;
    const size_t n = std::min(out.size(), size_t(x.rows * x.cols));
    if (auto e = cudaMemcpyAsync(out.data(), x.data, n * sizeof(float), cudaMemcpyDeviceToHost, stream_); e != cudaSuccess)
      return record(fail(cuda_error("cudaMemcpyAsync (to_host)", e)));
    if (auto e = cudaStreamSynchronize(stream_); e != cudaSuccess)
      record(fail(cuda_error("the device failed while running the step (cudaStreamSynchronize)", e)));
  }

  [[nodiscard]] bool captures_graphs() const override { return true; }
  [[nodiscard]] bool staging() const override { return pass_ == pass::stage; }
  [[nodiscard]] graph_counts graphs() const override { return counts_; }

  // The staging pass runs `ops` with every launch skipped: the ops upload their host inputs and
  // hash their launch arguments (pointers, shapes, split counts) into a signature. A graph stored
  // under `key` with that signature is launched; otherwise (first use, or a buffer moved) `ops`
  // runs again under stream capture and the new graph replaces the old. A capture that fails turns
  // graphs off for this backend (said once on stderr) and the step runs eagerly.
  bool run_graph(uint64_t key, const std::function<void()>& ops) override {
    if (graphs_off_ || error_) return false;
    pass_ = pass::stage;
    signature_ = 14695981039346656037ull;
    ops();
    pass_ = pass::eager;
    if (error_) return true;  // the step's error, through check()
    auto it = graphs_.find(key);
    if (it == graphs_.end() || it->second.signature != signature_) {
      if (it != graphs_.end()) {
        cudaGraphExecDestroy(it->second.exec);
        graphs_.erase(it);
      }
      auto exec = capture(ops);
      if (!exec) {
        spdlog::warn("CUDA graphs are off for this device: {}", exec.message());
        graphs_off_ = true;
        return false;
      }
      it = graphs_.emplace(key, graph{*exec, signature_}).first;
      ++counts_.captured;
    }
    if (auto e = cudaGraphLaunch(it->second.exec, stream_); e != cudaSuccess)
      record(fail(cuda_error("cudaGraphLaunch", e)));
    else
      ++counts_.launched;
    return true;
  }

  expected<void> check() override {
    if (auto e = cudaStreamSynchronize(stream_); e != cudaSuccess && !error_)
      error_ = cuda_error("the device failed while running the step (cudaStreamSynchronize)", e);
    if (!error_) return {};
    auto out = fail(*error_);
    error_.reset();
    return out;
  }

 private:
  // eager: ops launch; stage: ops upload inputs and hash their launch arguments, launching
  // nothing; capture: ops launch into the stream capture and must not upload.
  enum class pass { eager, stage, capture };
  struct graph {
    cudaGraphExec_t exec = nullptr;
    uint64_t signature = 0;
  };

  [[nodiscard]] bool may_upload() const { return pass_ != pass::capture; }

  // In the staging pass, mixes the launch arguments into the signature and returns true (the op
  // launches nothing); otherwise false.
  template <class... A>
  bool staged(const A&... args) {
    if (pass_ != pass::stage) return false;
    (mix(args), ...);
    return true;
  }
  template <class T>
  void mix(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* bytes = reinterpret_cast<const unsigned char*>(&v);
    for (size_t i = 0; i < sizeof v; ++i) signature_ = (signature_ ^ bytes[i]) * 1099511628211ull;  // FNV-1a
  }

  // Ops that synchronize with the host cannot be part of a graph; true when not inside one.
  bool eager(const char* op) {
    if (pass_ == pass::eager) return true;
    if (!error_) error_ = std::string(op) + " was called inside a captured CUDA graph";
    return false;
  }

  // Captures one run of `ops` on the stream into an executable graph.
  expected<cudaGraphExec_t> capture(const std::function<void()>& ops) {
    if (auto e = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal); e != cudaSuccess)
      return fail(cuda_error("cudaStreamBeginCapture", e));
    pass_ = pass::capture;
    ops();
    pass_ = pass::eager;
    cudaGraph_t g = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(stream_, &g);
    std::optional<std::string> failed = std::move(error_);
    error_.reset();
    if (!failed && ended != cudaSuccess) failed = cuda_error("cudaStreamEndCapture", ended);
    cudaGraphExec_t exec = nullptr;
    if (!failed) {
      if (auto e = cudaGraphInstantiate(&exec, g, 0); e != cudaSuccess) failed = cuda_error("cudaGraphInstantiate", e);
    }
    if (g) cudaGraphDestroy(g);
    if (failed) {
      (void)cudaGetLastError();
      return fail(*failed);
    }
    return exec;
  }

  void drop_graphs() {
    for (auto& [key, g] : graphs_) cudaGraphExecDestroy(g.exec);
    graphs_.clear();
  }

  // Attention over a batch: the decode path splits long contexts along the KV length.
  void attend(act q, const cuda_paged_kv& c, int64_t layer, const cuda::paged_batch_args& b,
              std::span<const int32_t> pos, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, act out) {
    int32_t splits = 1;
    if (cuda::is_decode_launch(b, head_dim)) {
      const int32_t longest = pos.empty() ? 0 : *std::max_element(pos.begin(), pos.end()) + 1;
      splits = decode_splits(b.n, cuda::decode_blocks_per_token(n_heads, n_kv_heads, head_dim), longest, sm_count_);
    }
    const size_t need = size_t(cuda::decode_scratch_floats(b.n, n_heads, head_dim, splits)) * sizeof(float);
    if (need > attn_scratch_.bytes && !record(attn_scratch_.allocate(need * 2))) return;
    auto* scratch = static_cast<float*>(attn_scratch_.ptr);
    if (staged(q, c.k(layer), b, n_heads, n_kv_heads, head_dim, splits, scratch, out)) return;
    launched(cuda::launch_paged_attention(q.data, c.k(layer), c.v(layer), b, n_heads, n_kv_heads, head_dim, splits,
                                          scratch, out.data, stream_),
             "paged_attention");
  }

  struct gemm_plan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
    void destroy() {
      if (a) cublasLtMatrixLayoutDestroy(a);
      if (b) cublasLtMatrixLayoutDestroy(b);
      if (c) cublasLtMatrixLayoutDestroy(c);
      if (op) cublasLtMatmulDescDestroy(op);
    }
  };

  // y[n, m] (row-major) = x[n, k] w[m, k]^T, in cuBLAS's column-major terms: D[m, n] = op(A)[m, k]
  // B[k, n], with A = w seen as a k x m column-major matrix (so op(A) = A^T) and B = x as k x n.
  // One plan per shape, with the heuristic's best algorithm for the workspace.
  expected<const gemm_plan*> plan_for(int64_t m, int64_t n, int64_t k) {
    const auto key = std::make_tuple(m, n, k);
    if (auto it = plans_.find(key); it != plans_.end()) return &it->second;
    gemm_plan p;
    auto bad = [&p](const char* what, cublasStatus_t s) {
      p.destroy();
      return fail(cublas_error(what, s));
    };
    cublasStatus_t s = cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    if (s != CUBLAS_STATUS_SUCCESS) return bad("cublasLtMatmulDescCreate", s);
    const cublasOperation_t transa = CUBLAS_OP_T, transb = CUBLAS_OP_N;
    cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &transa, sizeof transa);
    cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &transb, sizeof transb);
    if ((s = cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, uint64_t(k), uint64_t(m), k)) != CUBLAS_STATUS_SUCCESS)
      return bad("cublasLtMatrixLayoutCreate (A)", s);
    if ((s = cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, uint64_t(k), uint64_t(n), k)) != CUBLAS_STATUS_SUCCESS)
      return bad("cublasLtMatrixLayoutCreate (B)", s);
    if ((s = cublasLtMatrixLayoutCreate(&p.c, CUDA_R_32F, uint64_t(m), uint64_t(n), m)) != CUBLAS_STATUS_SUCCESS)
      return bad("cublasLtMatrixLayoutCreate (C)", s);
    cublasLtMatmulPreference_t pref = nullptr;
    if ((s = cublasLtMatmulPreferenceCreate(&pref)) != CUBLAS_STATUS_SUCCESS) return bad("cublasLtMatmulPreferenceCreate", s);
    const size_t ws = workspace_.bytes;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    s = cublasLtMatmulAlgoGetHeuristic(lt_, p.op, p.a, p.b, p.c, p.c, pref, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (s != CUBLAS_STATUS_SUCCESS) return bad("cublasLtMatmulAlgoGetHeuristic", s);
    if (found == 0) return bad("cublasLtMatmulAlgoGetHeuristic (no algorithm for this shape)", CUBLAS_STATUS_NOT_SUPPORTED);
    p.algo = result.algo;
    return &plans_.emplace(key, p).first->second;
  }

  expected<void> init_paged(cuda_paged_kv& p, int64_t n_layers, int64_t num_blocks, int64_t block_size,
                            int64_t kv_dim, int64_t spare) {
    p.layers = n_layers;
    p.blocks = num_blocks;
    p.block = block_size;
    p.kv_dim = kv_dim;
    p.spare = spare;
    const size_t bytes = size_t(n_layers * 2 * (num_blocks + spare) * block_size * kv_dim) * sizeof(float);
    if (auto ok = p.mem.allocate(bytes); !ok) return fail("KV cache on the device: " + ok.message());
    if (auto e = cudaMemsetAsync(p.mem.ptr, 0, bytes, stream_); e != cudaSuccess) return fail(cuda_error("cudaMemsetAsync", e));
    return {};
  }

  // The device view of a batch: every token's sequence and position, every sequence's table.
  expected<cuda::paged_batch_args> batch_args(const paged_batch& pb, int64_t block_size) {
    offsets_host_.assign(1, 0);
    tables_host_.clear();
    for (const auto& t : pb.tables) {
      tables_host_.insert(tables_host_.end(), t.begin(), t.end());
      offsets_host_.push_back(int32_t(tables_host_.size()));
    }
    cuda::paged_batch_args a;
    auto pos = pos_.sync(pb.pos, stream_, may_upload());
    if (!pos) return pos.err();
    auto seq = seq_.sync(pb.token_seq, stream_, may_upload());
    if (!seq) return seq.err();
    auto off = offsets_.sync(std::span<const int32_t>(offsets_host_), stream_, may_upload());
    if (!off) return off.err();
    auto tab = tables_.sync(std::span<const int32_t>(tables_host_), stream_, may_upload());
    if (!tab) return tab.err();
    // Query tiles for the prefill kernel: runs of consecutive positions of one sequence.
    tiles_host_.clear();
    for (size_t i = 0; i < pb.pos.size(); ++i) {
      const bool extends = i > 0 && pb.token_seq[i] == pb.token_seq[i - 1] && pb.pos[i] == pb.pos[i - 1] + 1 &&
                           tiles_host_.back() < int32_t(cuda::attention_tile_tokens);
      if (extends) {
        ++tiles_host_.back();
      } else {
        tiles_host_.push_back(int32_t(i));
        tiles_host_.push_back(1);
      }
    }
    auto tiles = tiles_.sync(std::span<const int32_t>(tiles_host_), stream_, may_upload());
    if (!tiles) return tiles.err();
    a.tiles = *tiles;
    a.n_tiles = int64_t(tiles_host_.size() / 2);
    a.pos = *pos;
    a.token_seq = *seq;
    a.table_offsets = *off;
    a.tables = *tab;
    a.n = int64_t(pb.pos.size());
    a.block_size = block_size;
    return a;
  }

  // One sequence in one block of `capacity` positions (the contiguous kv_store): position p is
  // row p of block 0.
  expected<cuda::paged_batch_args> single_sequence(std::span<const int32_t> pos, int64_t capacity) {
    single_seq_.assign(pos.size(), 0);
    static const int32_t zero_table = 0;
    const std::span<const int32_t> table(&zero_table, 1);
    const std::span<const int32_t> tables[1] = {table};
    return batch_args(paged_batch{pos, single_seq_, tables}, capacity);
  }

  // Keeps the first error; true when `r` is fine.
  template <class R>
  bool record(const R& r) {
    if (r) return true;
    if (!error_) error_ = r.message();
    return false;
  }
  void record(const error& e) {
    if (!error_) error_ = e.message;
  }
  bool launched(cudaError_t e, const char* kernel) {
    if (e == cudaSuccess) return true;
    if (!error_) error_ = cuda_error((std::string("launching ") + kernel).c_str(), e);
    return false;
  }

  int device_;
  int sm_count_ = 1;
  cudaStream_t stream_;
  cublasLtHandle_t lt_;
  device_buffer workspace_, x_bf16_, attn_scratch_, sample_params_, sample_ids_;
  pass pass_ = pass::eager;
  uint64_t signature_ = 0;
  std::unordered_map<uint64_t, graph> graphs_;
  bool graphs_off_ = false;
  graph_counts counts_;
  std::vector<cuda::sample_params> sample_host_;
  std::map<std::tuple<int64_t, int64_t, int64_t>, gemm_plan> plans_;
  device_mirror<int32_t> ids_, pos_, seq_, offsets_, tables_, rows_, tiles_;
  device_mirror<float> inv_freq_;
  device_mirror<penalty_entry> penalties_;
  std::vector<int32_t> offsets_host_, tables_host_, tiles_host_, single_seq_;
  std::optional<std::string> error_;
};

}  // namespace

expected<std::unique_ptr<backend>> make_cuda_backend(int device) {
  int count = 0;
  if (auto e = cudaGetDeviceCount(&count); e != cudaSuccess) {
    (void)cudaGetLastError();
    return fail(cuda_error("no CUDA device (cudaGetDeviceCount)", e));
  }
  if (device < 0 || device >= count)
    return fail("CUDA device " + std::to_string(device) + " does not exist (" + std::to_string(count) + " found)");
  if (auto e = cudaSetDevice(device); e != cudaSuccess) return fail(cuda_error("cudaSetDevice", e));
  cudaStream_t stream = nullptr;
  if (auto e = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking); e != cudaSuccess)
    return fail(cuda_error("cudaStreamCreate", e));
  cublasLtHandle_t lt = nullptr;
  if (auto s = cublasLtCreate(&lt); s != CUBLAS_STATUS_SUCCESS) {
    cudaStreamDestroy(stream);
    return fail(cublas_error("cublasLtCreate", s));
  }
  auto be = std::make_unique<cuda_backend>(device, stream, lt);
  if (auto ok = be->init(); !ok) return fail("cuBLASLt workspace: " + ok.message());
  return std::unique_ptr<backend>(std::move(be));
}

}  // namespace troupe::engine
