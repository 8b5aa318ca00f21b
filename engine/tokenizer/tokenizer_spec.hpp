// The description of a BPE tokenizer that both file formats are read into (and that
// tokenizer_gguf_metadata writes out): one place decides behaviour, whatever the source.
// It covers the two BPE families Hugging Face ships: byte-level BPE (GPT-2, Llama 3, Qwen2) and
// SentencePiece-style BPE with byte fallback and "▁" for spaces (Llama 2, Mistral, Gemma).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/expected.hpp"
#include "engine/tokenizer/added_tokens.hpp"
#include "engine/tokenizer/tokenizer.hpp"

namespace troupe::engine {

// Largest token id accepted from a file (the biggest real vocabularies are ~260 K); keeps a
// hostile file from making us allocate per-id tables of billions of entries.
inline constexpr int64_t max_token_id = (int64_t{1} << 22) - 1;

// SentencePiece's stand-in for a space, U+2581.
inline constexpr std::string_view metaspace = "\xE2\x96\x81";

// One normalizer step (Hugging Face's normalizers, in the order the file lists them).
struct normalizer_step {
  enum class kind { nfc, nfd, nfkc, nfkd, lowercase, prepend, replace, strip };
  kind what = kind::nfc;
  std::string text;     // prepend: the prefix; replace: the literal to find
  std::string content;  // replace: what replaces it
  bool left = false;    // strip: strip leading whitespace
  bool right = false;   // strip: strip trailing whitespace
};

// One pre-tokenizer step.
struct pre_step {
  enum class kind { split, prefix_space, metaspace };
  // How a Split step keeps the matches (Hugging Face's SplitDelimiterBehavior).
  enum class behavior { isolated, removed, merged_with_previous, merged_with_next, contiguous };
  // When a Metaspace step prepends the replacement: always, only to the text at the very start
  // of the input, or never.
  enum class prepend { always, first, never };
  kind what = kind::split;
  std::string pattern;  // split: the regex
  behavior split_behavior = behavior::isolated;
  bool invert = false;                // split: the pattern matches the pieces, not the delimiters
  std::string replacement;            // metaspace: replaces every space (normally "▁")
  prepend prepend_scheme = prepend::always;
  bool split_words = true;            // metaspace: cut before each replacement character
  std::string key;                    // where the step came from, for messages
};

// A regex Split step with the Isolated behaviour (the byte-level families' pre-tokenizer).
[[nodiscard]] inline pre_step regex_split_step(std::string pattern, std::string key) {
  pre_step s;
  s.pattern = std::move(pattern);
  s.key = std::move(key);
  return s;
}

struct tokenizer_spec {
  std::string source;  // the file, for messages
  // The BPE model's vocabulary by id (spelled in the model's alphabet); an empty string is no
  // model token at that id (an added token alone, or a hole in the ids).
  std::vector<std::string> vocab;
  std::vector<std::pair<std::string, std::string>> merges;  // rank order
  std::string merges_key = "merges";                        // how errors name them (after source)
  std::vector<added_token> added;
  std::vector<normalizer_step> normalizer;
  std::vector<pre_step> pre_steps;
  // Words are spelled in GPT-2's byte alphabet before the model sees them (ByteLevel), and
  // decoded back from it.
  bool byte_level = false;
  bool byte_fallback = false;  // unknown characters become <0xXX> byte tokens
  bool fuse_unk = false;       // consecutive unknowns become one unk
  bool ignore_merges = false;  // a word that is a vocabulary token is that token (Llama 3)
  std::optional<int32_t> unk;

  // Decoding (SentencePiece families): every `decode_replace.first` in a token becomes
  // `.second` ("▁" -> " "), and the decoded text loses one leading space (Strip / Metaspace).
  std::optional<std::pair<std::string, std::string>> decode_replace;
  bool decode_byte_fallback = false;  // <0xXX> tokens decode to their byte
  bool decode_strip_leading_space = false;

  // Post-processing: ids added around the text when encoding with special tokens.
  std::vector<int32_t> prefix;
  std::vector<int32_t> suffix;
  std::optional<int32_t> bos;
  std::optional<int32_t> eos;
  std::vector<int32_t> extra_eos;  // more ids ending generation (GGUF eot/eom ids)
  std::string chat_template;
};

// Names of added specials that end generation besides eos.
inline constexpr std::string_view end_of_turn_names[] = {"<|eot_id|>", "<|eom_id|>", "<|im_end|>",
                                                         "<|endoftext|>", "<end_of_turn>"};

// Builds the tokenizer; errors (bad regex, bad merge, ids out of range) name spec.source.
[[nodiscard]] expected<std::unique_ptr<tokenizer>> make_bpe_tokenizer(tokenizer_spec spec);

}  // namespace troupe::engine
