#include "engine/model_tokenizer.hpp"

#include "engine/model/gguf.hpp"

namespace troupe::engine {

expected<std::unique_ptr<tokenizer>> load_tokenizer_for(const model& m) {
  if (m.format == model_format::gguf) return load_tokenizer_gguf(*m.gguf);
  return load_tokenizer_json(m.path);
}

}  // namespace troupe::engine
