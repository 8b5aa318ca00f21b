// Writes the seed corpora for the parser fuzzers with the project's own writers, so the seeds always
// follow the current format code. Usage: make_seeds SAFETENSORS_DIR GGUF_DIR
#include <cstdio>
#include <cstring>

#include "engine/model/gguf.hpp"
#include "engine/model/safetensors.hpp"

using namespace troupe::engine;

namespace {

template <class T>
std::vector<std::byte> bytes_of(std::vector<T> v) {
  std::vector<std::byte> out(v.size() * sizeof(T));
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

bool check(const troupe::expected<void>& r) {
  if (!r) std::fprintf(stderr, "make_seeds: %s\n", r.message().c_str());
  return bool(r);
}

gguf_value arr(std::initializer_list<gguf_value> items) { return gguf_value{gguf_array(items)}; }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s SAFETENSORS_DIR GGUF_DIR\n", argv[0]);
    return 2;
  }
  const std::string st = argv[1], gg = argv[2];
  bool ok = true;

  ok &= check(write_safetensors(
      st + "/three.safetensors",
      {{"model.embed_tokens.weight", dtype::bf16, {2, 3}, bytes_of(std::vector<uint16_t>{1, 2, 3, 4, 5, 6})},
       {"norm", dtype::f32, {2}, bytes_of(std::vector<float>{1, 2})},
       {"h\"alf", dtype::f16, {1, 1}, bytes_of(std::vector<uint16_t>{7})},
       {"scalar", dtype::f32, {}, bytes_of(std::vector<float>{3})}},
      {{"format", "pt"}}));
  ok &= check(write_safetensors(st + "/empty.safetensors", {}, {}));
  ok &= check(write_safetensors(st + "/zero.safetensors", {{"z", dtype::f32, {0, 4}, {}}}, {{"a", "b"}}));

  std::vector<block_q8_0> q(2);
  for (auto& b : q) {
    b.d = f32_to_f16(0.25f);
    for (int i = 0; i < 32; ++i) b.qs[i] = int8_t(i - 16);
  }
  const std::map<std::string, gguf_value> meta{
      {"general.architecture", {std::string("llama")}},
      {"llama.block_count", {uint32_t(2)}},
      {"llama.rope.freq_base", {10000.0f}},
      {"t.u8", {uint8_t(1)}}, {"t.i8", {int8_t(-1)}}, {"t.u16", {uint16_t(2)}}, {"t.i16", {int16_t(-2)}},
      {"t.i32", {int32_t(-3)}}, {"t.u64", {uint64_t(4)}}, {"t.i64", {int64_t(-4)}},
      {"t.f64", {0.5}}, {"t.bool", {true}},
      {"tokenizer.ggml.tokens", arr({{std::string("<s>")}, {std::string("a")}, {std::string("b")}})},
      {"tokenizer.ggml.scores", arr({{0.0f}, {-1.0f}, {-2.0f}})},
      {"tokenizer.ggml.token_type", arr({{int32_t(3)}, {int32_t(1)}, {int32_t(1)}})},
      {"t.nested", arr({arr({{uint8_t(1)}}), arr({}), arr({arr({{std::string("x")}})})})},
  };
  const std::vector<gguf_tensor_entry> tensors{
      {"token_embd.weight", dtype::f16, {3, 2}, bytes_of(std::vector<uint16_t>{1, 2, 3, 4, 5, 6})},
      {"blk.0.attn_q.weight", dtype::q8_0, {1, 64}, bytes_of(q)},
      {"output_norm.weight", dtype::f32, {2}, bytes_of(std::vector<float>{1, 1})},
      {"blk.0.ffn_up.weight", dtype::bf16, {1, 1, 2}, bytes_of(std::vector<uint16_t>{1, 2})},
  };
  ok &= check(write_gguf(gg + "/model.gguf", meta, tensors));
  ok &= check(write_gguf(gg + "/aligned64.gguf", {{"general.name", {std::string("x")}}}, tensors, 64));
  ok &= check(write_gguf(gg + "/meta_only.gguf", meta, {}));
  return ok ? 0 : 1;
}
