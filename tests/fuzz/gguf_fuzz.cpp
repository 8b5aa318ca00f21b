// libFuzzer target for the GGUF reader: any input must parse or fail cleanly; when it parses, every
// view must lie inside the input and be aligned, and every tensor byte and metadata value is read.
#include <cstdint>
#include <cstring>

#include "engine/model/gguf.hpp"

using namespace troupe::engine;

namespace {

volatile uint8_t sink = 0;

void touch(const gguf_value& v) {
  std::visit(
      [](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, gguf_array>) {
          for (const auto& e : x) touch(e);
        } else if constexpr (std::is_same_v<T, std::string>) {
          for (char c : x) sink = sink ^ uint8_t(c);
        } else {
          uint8_t bytes[sizeof(T)];
          std::memcpy(bytes, &x, sizeof(T));
          for (uint8_t b : bytes) sink = sink ^ b;
        }
      },
      v.v);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> image(reinterpret_cast<const std::byte*>(data), size);
  auto parsed = parse_gguf(image, "fuzz.gguf");
  if (!parsed) {
    if (parsed.message().rfind("fuzz.gguf: ", 0) != 0) __builtin_trap();  // unnamed error
    return 0;
  }
  const auto& f = *parsed;
  for (const auto& t : f.tensors) {
    if (t.shape.empty() || t.shape.size() > gguf_max_dims) __builtin_trap();
    const auto row = row_bytes(t.type, t.cols());
    if (!row || t.nbytes != (t.cols() == 0 ? 0 : *row * size_t(t.numel() / t.cols()))) __builtin_trap();
    if (t.data < image.data() || t.nbytes > size_t(image.data() + size - t.data)) __builtin_trap();
    if (size_t(t.data - image.data()) % f.alignment != 0) __builtin_trap();
    uint8_t acc = 0;
    for (size_t i = 0; i < t.nbytes; ++i) acc ^= uint8_t(t.data[i]);
    sink = sink ^ acc;
    if (f.find(t.name) == nullptr) __builtin_trap();
  }
  for (const auto& [key, value] : f.metadata) {
    touch(value);
    // The getters must answer every key without crashing, whatever its type.
    (void)f.get_string(key);
    (void)f.get_int(key);
    (void)f.get_float(key);
    (void)f.get_bool(key);
    (void)f.get_strings(key);
    (void)f.get_ints(key);
    (void)f.get_floats(key);
  }
  return 0;
}
