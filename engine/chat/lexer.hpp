// The first pass over a template: splits it into text and the tokens of {{ ... }} and {% ... %},
// dropping comments and applying Jinja's whitespace control the way Hugging Face configures it:
// trim_blocks (the first newline after a block or comment tag is removed), lstrip_blocks (spaces
// and tabs before a block or comment tag on its own line are removed), `-` on a tag strips all
// whitespace on that side, `+` turns trim/lstrip off for that tag. As Jinja does, newlines are
// normalized to \n and one trailing newline of the template is dropped. {% raw %} ... {% endraw %}
// becomes text here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"
#include "engine/chat/source_location.hpp"

namespace troupe::engine::chat {

enum class token_kind : uint8_t {
  text,         // template text, whitespace control applied
  print_begin,  // {{
  print_end,    // }}
  block_begin,  // {%
  block_end,    // %}
  name,
  string,       // `text` holds the decoded literal
  integer,      // `integer` holds the value
  floating,     // `floating` holds the value
  op,           // operator or punctuation, in `text`: + - * / // % ** ~ == != < <= > >= = ( ) [ ] { } , . : | ;
  end,          // end of the template
};

struct token {
  token_kind kind = token_kind::end;
  std::string text;
  int64_t integer = 0;
  double floating = 0;
  source_location loc;
};

// Templates larger than this are rejected (real chat templates are a few KiB).
inline constexpr size_t max_template_bytes = size_t{1} << 20;

// Errors (unterminated tag, comment, string or raw block, unexpected character, unbalanced
// brackets) name the line and column.
[[nodiscard]] expected<std::vector<token>> tokenize(std::string_view source);

}  // namespace troupe::engine::chat
