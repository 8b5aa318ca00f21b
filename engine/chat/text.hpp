// Python's str operations on UTF-8 text: lengths, indices and slices count code points, whitespace is
// Python's (str.isspace), splitting and stripping follow str.split / str.strip.
// Limits: case mapping (upper, lower, title, capitalize) changes ASCII letters only; other letters
// are kept as they are and count as uncased. Invalid UTF-8 bytes count as one character each.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::engine::chat::text {

// Number of characters (code points).
[[nodiscard]] size_t length(std::string_view s);
// Byte offset of every character, then s.size(): offsets[i]..offsets[i+1] is character i.
[[nodiscard]] std::vector<size_t> char_offsets(std::string_view s);
// Character index of byte offset `byte` (which starts a character, or is s.size()).
[[nodiscard]] size_t char_index(std::string_view s, size_t byte);

// Python's str.isspace for one code point.
[[nodiscard]] bool is_space(char32_t cp);

// str.strip / lstrip / rstrip: `chars` are the characters to remove (nullopt: whitespace).
enum class strip_side { both, left, right };
[[nodiscard]] std::string_view strip(std::string_view s, strip_side side,
                                     std::optional<std::string_view> chars = std::nullopt);

// str.split(sep, maxsplit): sep nullopt splits on runs of whitespace and drops empty parts;
// maxsplit < 0 means no limit. `sep` must not be empty.
[[nodiscard]] std::vector<std::string> split(std::string_view s, std::optional<std::string_view> sep,
                                             int64_t maxsplit);
// str.splitlines(): \n, \r\n, \r, \v, \f, \x1c-\x1e, U+0085, U+2028, U+2029 end lines.
[[nodiscard]] std::vector<std::string_view> splitlines(std::string_view s);

[[nodiscard]] std::string upper(std::string_view s);
[[nodiscard]] std::string lower(std::string_view s);
// str.title(): every cased run starts upper case and continues lower case ("they're" -> "They'Re").
[[nodiscard]] std::string title_method(std::string_view s);
// Jinja's title filter: words start after '-', whitespace, '(', '{', '[' or '<' ("they're" -> "They're").
[[nodiscard]] std::string title_filter(std::string_view s);
// str.capitalize(): first character upper case, the rest lower case.
[[nodiscard]] std::string capitalize(std::string_view s);
// str.islower() / str.isupper(): some cased character, and all cased characters in that case.
[[nodiscard]] bool is_lower(std::string_view s);
[[nodiscard]] bool is_upper(std::string_view s);

// str.replace(old, new, count): count < 0 replaces all; an empty `old` inserts `repl` between
// characters (and at both ends). Stops with nullopt once the result would exceed `max_bytes`.
[[nodiscard]] std::optional<std::string> replace(std::string_view s, std::string_view old, std::string_view repl,
                                                 int64_t count, size_t max_bytes);

// Python's slice.indices(): the characters or elements start, start + step, ... (count of them) that
// s[start:stop:step] selects from a sequence of `length`. step must not be 0.
struct slice_range {
  int64_t start = 0;
  int64_t step = 1;
  int64_t count = 0;
};
[[nodiscard]] slice_range slice_indices(int64_t length, std::optional<int64_t> start, std::optional<int64_t> stop,
                                        int64_t step);

// Decodes the character at s[i] (common/utf8.hpp's rules); `len` receives its byte length. An
// invalid byte decodes as U+FFFD with length 1.
[[nodiscard]] char32_t decode(std::string_view s, size_t i, size_t& len);

}  // namespace troupe::engine::chat::text
