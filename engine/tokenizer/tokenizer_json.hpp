// Reading a Hugging Face tokenizer folder (tokenizer.json + optional tokenizer_config.json) into a
// tokenizer_spec; shared by load_tokenizer_json and tokenizer_gguf_metadata.
#pragma once

#include <string>

#include "common/expected.hpp"
#include "engine/tokenizer/tokenizer_spec.hpp"

namespace troupe::engine {

// Errors name the file and the key ("<dir>/tokenizer.json: model.type \"Unigram\" is not ...").
[[nodiscard]] expected<tokenizer_spec> read_tokenizer_json_spec(const std::string& dir);

}  // namespace troupe::engine
