// The small interface the Llama-family forward pass is written against, once for every device:
// weights uploaded once, activation buffers, a per-sequence KV store, and the handful of ops a
// decoder layer needs. The CPU backend (cpu_backend.hpp) and the CUDA backend
// (kernels/cuda/cuda_backend.hpp) implement it; make_backend.hpp picks one by device name.
// Threading contract: a backend and everything it hands out are used by one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>

#include "common/expected.hpp"
#include "engine/device_sampling.hpp"
#include "engine/model/tensor_view.hpp"

namespace troupe::engine {

// A weight in backend memory, in whatever form the backend computes with.
class device_weight {
 public:
  virtual ~device_weight() = default;
};

// f32 activations in backend memory: `rows` tokens of `cols` features, row-major. Non-owning.
struct act {
  float* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  [[nodiscard]] act first_rows(int64_t n) const { return {data, n, cols}; }
  [[nodiscard]] act row(int64_t r) const { return {data + r * cols, 1, cols}; }
};

// One projection of a matmul_group.
struct matmul_job {
  const device_weight* w;
  const device_weight* bias;  // or null
  act y;
};

// Owns activation memory; view() hands out the act.
class act_buffer {
 public:
  virtual ~act_buffer() = default;
  [[nodiscard]] virtual act view() const = 0;
};

// Keys and values of one sequence for every layer, positions 0..capacity-1.
class kv_store {
 public:
  virtual ~kv_store() = default;
  [[nodiscard]] virtual int64_t capacity() const = 0;
  [[nodiscard]] virtual size_t bytes_per_token() const = 0;  // K and V, all layers
};

// Keys and values of many sequences in fixed-size blocks (the paged KV cache): per layer,
// [num_blocks, block_size, kv_dim] for K and the same for V. Which block holds which positions of
// which sequence is the caller's business (block tables, engine/kv_cache).
class paged_kv {
 public:
  virtual ~paged_kv() = default;
  [[nodiscard]] virtual int64_t num_blocks() const = 0;
  [[nodiscard]] virtual int64_t block_size() const = 0;
  [[nodiscard]] virtual size_t bytes_per_block() const = 0;  // K and V, all layers
  // A block outside 0..num_blocks-1 that tokens may write and read without touching any sequence:
  // the padding of a captured decode graph (llama_forward). -1 when there is none.
  [[nodiscard]] virtual int32_t spare_block() const { return -1; }
};

// The sequences a batched step reads K/V through: per token its sequence and position, per
// sequence its block table (position p at block table[p / block_size], row p % block_size).
struct paged_batch {
  std::span<const int32_t> pos;                     // [n]
  std::span<const int32_t> token_seq;               // [n]: index into `tables`
  std::span<const std::span<const int32_t>> tables;  // per sequence
};

class backend {
 public:
  virtual ~backend() = default;
  [[nodiscard]] virtual std::string_view name() const = 0;
  // Memory the backend could still allocate (bytes): what a KV budget given as a fraction scales.
  [[nodiscard]] virtual int64_t available_memory() const = 0;

  // Prepares a weight. Matrices may stay in their stored dtype (the CPU backend keeps a view into
  // the mapped file: no copy); 1-D tensors (norms, biases) are converted to f32.
  [[nodiscard]] virtual expected<std::unique_ptr<device_weight>> upload(const tensor_view& t) = 0;
  [[nodiscard]] virtual std::unique_ptr<act_buffer> alloc(int64_t rows, int64_t cols) = 0;
  [[nodiscard]] virtual expected<std::unique_ptr<kv_store>> alloc_kv(int64_t n_layers, int64_t capacity,
                                                                     int64_t kv_dim) = 0;
  [[nodiscard]] virtual expected<std::unique_ptr<paged_kv>> alloc_paged_kv(int64_t n_layers, int64_t num_blocks,
                                                                           int64_t block_size, int64_t kv_dim) = 0;

  // out[i] = table[ids[i]] (ids already checked to be < table rows).
  virtual void embed(const device_weight& table, std::span<const int32_t> ids, act out) = 0;
  // out = x / rms(x) * gamma, row-wise. out may alias x.
  virtual void rms_norm(act x, const device_weight& gamma, float eps, act out) = 0;
  // y[n, w_rows] = x[n, w_cols] * w^T (+ bias).
  virtual void matmul(act x, const device_weight& w, const device_weight* bias, act y) = 0;
  // matmul(x, *j.w, j.bias, j.y) for every job: projections of one input (q/k/v, gate/up), which
  // a backend may run as one pass (the CPU backend does for a decode token).
  virtual void matmul_group(act x, std::span<const matmul_job> jobs) {
    for (const matmul_job& j : jobs) matmul(x, *j.w, j.bias, j.y);
  }
  // Rotary embedding in place on x[n, n_heads*head_dim] at positions pos[n].
  virtual void rope(act x, int64_t n_heads, int64_t head_dim, std::span<const int32_t> pos,
                    std::span<const float> inv_freq, bool interleaved) = 0;
  // Stores k, v [n, kv_dim] of `layer` at positions pos[n].
  virtual void write_kv(kv_store& kv, int64_t layer, std::span<const int32_t> pos, act k, act v) = 0;
  // Causal attention of q [n, n_heads*head_dim] at positions pos over kv positions 0..pos[i].
  virtual void attention(act q, const kv_store& kv, int64_t layer, std::span<const int32_t> pos,
                         int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, act out) = 0;
  // Stores k, v [n, kv_dim] of `layer` at the rows of b (each token's block table and position).
  virtual void write_paged_kv(paged_kv& kv, int64_t layer, const paged_batch& b, act k, act v) = 0;
  // Causal attention of q [n, n_heads*head_dim]: token i over positions 0..b.pos[i] of its sequence.
  virtual void paged_attention(act q, const paged_kv& kv, int64_t layer, const paged_batch& b,
                               int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, act out) = 0;
  // Copies block `src` to block `dst` in every layer (copy-on-write of a shared partial block).
  virtual void copy_kv_block(paged_kv& kv, int32_t src, int32_t dst) = 0;
  // out[i] = x[rows[i]].
  virtual void gather_rows(act x, std::span<const int32_t> rows, act out) = 0;
  // gate = silu(gate) * up.
  virtual void silu_mul(act gate, act up) = 0;
  // acc += x.
  virtual void add(act acc, act x) = 0;
  // acc += x, then out = acc / rms(acc) * gamma: the residual add and the next norm, which a device
  // fuses into one pass over the rows. out may alias x. The default runs add, then rms_norm.
  virtual void add_rms_norm(act acc, act x, const device_weight& gamma, float eps, act out) {
    add(acc, x);
    rms_norm(acc, gamma, eps, out);
  }
  // Copies an activation row range to host memory.
  virtual void to_host(act x, std::span<float> out) = 0;

  // The ops above return nothing: a device backend runs them asynchronously and keeps the first
  // failure (a launch, a copy, the device itself). check() waits for the enqueued work and
  // returns that failure once, then clears it; the forward pass calls it at the end of each call,
  // so a device error becomes that call's (the request's) error. The CPU backend cannot fail.
  [[nodiscard]] virtual expected<void> check() { return {}; }

  // Whether sample() works here. The CPU backend samples on the host (engine/sampler), which also
  // does what the device does not (logprobs, several samples from one row).
  [[nodiscard]] virtual bool samples_on_device() const { return false; }
  // One token id per row of `logits` [rows.size(), vocab] into `ids` (host memory), after the
  // rows' penalty entries (rows[i].penalty_begin/count index `penalties`) edit the logits in place;
  // only when samples_on_device(). Errors through check().
  virtual void sample(act logits, std::span<const device_sampling> rows, std::span<const penalty_entry> penalties,
                      std::span<int32_t> ids) {
    (void)logits, (void)rows, (void)penalties, (void)ids;
  }

  // CUDA graphs. run_graph runs `ops` -- one call's sequence of the ops above, the same sequence
  // for the same `key` -- as one captured graph: a staging pass first (staging() is true; the ops
  // upload their host inputs and launch nothing), then, the first time or when a buffer or launch
  // argument changed, a capturing pass; then the graph is launched. `ops` must not call to_host,
  // sample, copy_kv_block or check. Returns false, having run nothing, when the backend does not
  // capture graphs, or no longer does after a failed capture (the caller runs the ops itself);
  // errors through check(). captures_graphs() is the fixed capability: a caller that pads its
  // batches for graphs keeps padding them alike after a failed capture (tensor-parallel ranks
  // must agree on every all-reduce's size).
  [[nodiscard]] virtual bool captures_graphs() const { return false; }
  struct graph_counts {
    int64_t captured = 0;  // graphs captured (a recapture counts again)
    int64_t launched = 0;  // graph launches
  };
  [[nodiscard]] virtual graph_counts graphs() const { return {}; }
  [[nodiscard]] virtual bool staging() const { return false; }
  virtual bool run_graph(uint64_t key, const std::function<void()>& ops) {
    (void)key, (void)ops;
    return false;
  }

  // The device stream every op is enqueued on (a cudaStream_t for CUDA; null for the CPU), for a
  // communicator whose collectives must be ordered with the backend's ops (NCCL).
  [[nodiscard]] virtual void* native_stream() const { return nullptr; }
};

}  // namespace troupe::engine
