// Mistral 7B: the Llama layout; Mistral v0.1's sliding window is honoured by capping the context at
// the window, inside which sliding-window attention equals full attention. In GGUF it is "llama".
#include <algorithm>

#include "engine/model/arch/architecture.hpp"
#include "engine/model/json_reader.hpp"

namespace troupe::engine {

namespace {

expected<model_config> mistral_from_hf(const json_config& cfg) {
  auto c = read_hf_common(cfg, "mistral");
  if (!c) return c;
  auto window = cfg.get_int("sliding_window", 0);
  if (!window) return window.err();
  if (*window > 0) c->max_position = std::min(c->max_position, *window);
  return c;
}

}  // namespace

const architecture& mistral_architecture() {
  // gguf_arch is empty: llama.cpp stores Mistral as "llama", which loads through llama_architecture.
  static const architecture a{"mistral", "MistralForCausalLM", "mistral", "", true, mistral_from_hf, nullptr};
  return a;
}

}  // namespace troupe::engine
