// libFuzzer target for the safetensors reader: any input must parse or fail cleanly; when it parses,
// every view must lie inside the input and every byte and metadata string is read for ASan to see.
#include <cstdint>
#include <cstring>

#include "engine/model/safetensors.hpp"

using namespace troupe::engine;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> image(reinterpret_cast<const std::byte*>(data), size);
  auto parsed = parse_safetensors(image, "fuzz.safetensors");
  if (!parsed) {
    if (parsed.message().rfind("fuzz.safetensors: ", 0) != 0) __builtin_trap();  // unnamed error
    return 0;
  }
  volatile uint8_t sink = 0;
  for (const auto& t : parsed->tensors) {
    const size_t elem = t.type == dtype::f32 ? 4 : 2;
    if (t.nbytes != size_t(t.numel()) * elem) __builtin_trap();
    if (t.data < image.data() || t.nbytes > size_t(image.data() + size - t.data)) __builtin_trap();
    uint8_t acc = 0;
    for (size_t i = 0; i < t.nbytes; ++i) acc ^= uint8_t(t.data[i]);
    sink = sink ^ acc;
    if (parsed->find(t.name) == nullptr) __builtin_trap();
  }
  for (const auto& [k, v] : parsed->metadata) {
    for (char c : k) sink = sink ^ uint8_t(c);
    for (char c : v) sink = sink ^ uint8_t(c);
  }
  (void)sink;
  return 0;
}
