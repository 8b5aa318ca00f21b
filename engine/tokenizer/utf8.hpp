// The tokenizer's character classes on top of the shared UTF-8 primitives (common/utf8.hpp):
// Unicode whitespace and word characters, as Hugging Face's added-token and Strip rules use them.
#pragma once

#include <cstddef>
#include <string_view>

#include "common/utf8.hpp"

namespace troupe::engine {

// Unicode's White_Space property (what Rust's char::is_whitespace and Hugging Face use).
[[nodiscard]] bool is_unicode_space(char32_t cp);

// A letter, a number, a combining mark or '_' (what Rust's regex calls a word character).
[[nodiscard]] bool is_word_char(char32_t cp);

// Length of the whitespace that `s` starts / ends with (invalid bytes are not whitespace).
[[nodiscard]] size_t leading_space_length(std::string_view s);
[[nodiscard]] size_t trailing_space_length(std::string_view s);

}  // namespace troupe::engine
