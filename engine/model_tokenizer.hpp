// The tokenizer that belongs to a loaded model: tokenizer.json from its HF folder, or the vocabulary
// embedded in its GGUF file.
#pragma once

#include <memory>

#include "common/expected.hpp"
#include "engine/model/model.hpp"
#include "engine/tokenizer/tokenizer.hpp"

namespace troupe::engine {

[[nodiscard]] expected<std::unique_ptr<tokenizer>> load_tokenizer_for(const model& m);

}  // namespace troupe::engine
