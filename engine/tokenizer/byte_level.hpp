// GPT-2's byte-to-unicode mapping: byte-level BPE vocabularies spell every byte as one printable
// character (space is "Ġ", newline "Ċ"), so tokens are valid UTF-8 strings whatever the bytes.
#pragma once

#include <string>
#include <string_view>

namespace troupe::engine {

// The vocabulary spelling of one byte (a 1- or 2-byte UTF-8 string).
[[nodiscard]] std::string_view byte_level_char(unsigned char byte);

// Spells raw bytes in the byte-level alphabet.
[[nodiscard]] std::string byte_level_encode(std::string_view bytes);

// Maps a vocabulary string back to raw bytes. Follows Hugging Face's ByteLevel decoder: when some
// character of `token` is not in the byte alphabet (e.g. a special token with a plain space), the
// token's own UTF-8 bytes are used unchanged.
[[nodiscard]] std::string byte_level_decode(std::string_view token);

}  // namespace troupe::engine
