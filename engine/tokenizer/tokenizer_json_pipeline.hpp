// Readers for the pipeline sections of tokenizer.json (normalizer, pre_tokenizer, post_processor,
// decoder) into a tokenizer_spec. Each names the key of anything missing, mistyped or unsupported.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/model/json_reader.hpp"
#include "engine/tokenizer/tokenizer_spec.hpp"

namespace troupe::engine {

[[nodiscard]] expected<void> read_normalizer(json_reader& r, dom::element e, const std::string& key,
                                             tokenizer_spec& spec);

// Sets spec.byte_level when a ByteLevel step is present.
[[nodiscard]] expected<void> read_pre_tokenizer(json_reader& r, dom::element e,
                                                const std::string& key, tokenizer_spec& spec);

// The post-processor's single-sequence template, as ids before and after the text.
struct post_template {
  std::vector<int32_t> prefix;
  std::vector<int32_t> suffix;
};
[[nodiscard]] expected<post_template> read_post_processor(json_reader& r, dom::element e,
                                                          const std::string& key);

[[nodiscard]] expected<void> read_decoder(json_reader& r, dom::element e, const std::string& key,
                                          tokenizer_spec& spec);

}  // namespace troupe::engine
