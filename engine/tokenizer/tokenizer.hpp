// Text <-> token ids, faithful to Hugging Face's tokenizers: BPE models, byte-level (GPT-2, Llama 3,
// Qwen2) and SentencePiece-style with byte fallback (Llama 2, Mistral, Gemma), loaded from a
// tokenizer.json folder or from GGUF metadata (tokenizer.ggml.model "gpt2" or "llama").
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"
#include "engine/model/gguf.hpp"

namespace troupe::engine {

struct special_tokens {
  std::optional<int32_t> bos;
  std::optional<int32_t> eos;
  std::vector<int32_t> eos_ids;  // every id that ends generation (eos plus e.g. <|eot_id|>)
  // What encoding with special tokens puts around the text (the post-processor's template, or
  // add_bos_token / add_eos_token from tokenizer_config.json).
  std::vector<int32_t> prefix;
  std::vector<int32_t> suffix;
  // Whether encoding with special tokens starts with bos.
  [[nodiscard]] bool add_bos() const {
    return bos && std::find(prefix.begin(), prefix.end(), *bos) != prefix.end();
  }
};

// Thread-safety: all const methods may be called concurrently.
class tokenizer {
 public:
  virtual ~tokenizer() = default;

  // Encodes text. Special tokens written literally in `text` are matched when `parse_special` is
  // true (other added tokens always are). With `add_special`, specials().prefix and .suffix go
  // around the ids.
  [[nodiscard]] virtual std::vector<int32_t> encode(std::string_view text, bool add_special = true,
                                                    bool parse_special = true) const = 0;

  // The raw bytes one token stands for (byte-level tokens mapped back to bytes; may be a partial
  // UTF-8 sequence). Special tokens give their text. An out-of-range id gives an empty string.
  [[nodiscard]] virtual std::string token_bytes(int32_t id) const = 0;

  // Decodes ids to text: the tokens' bytes concatenated, less one leading space when
  // strips_leading_space(). Invalid UTF-8 (e.g. a partial character at the end) is kept as bytes.
  [[nodiscard]] virtual std::string decode(const std::vector<int32_t>& ids,
                                           bool skip_special = false) const = 0;

  // SentencePiece families: decoding drops the space that encoding put before the first word.
  [[nodiscard]] virtual bool strips_leading_space() const = 0;

  // The model's chat template (Jinja source) from tokenizer_config.json or GGUF metadata; empty
  // when it has none.
  [[nodiscard]] virtual const std::string& chat_template() const = 0;

  [[nodiscard]] virtual int32_t vocab_size() const = 0;
  [[nodiscard]] virtual bool is_special(int32_t id) const = 0;
  [[nodiscard]] virtual const special_tokens& specials() const = 0;
  // Id of a token by its exact vocabulary string, if any.
  [[nodiscard]] virtual std::optional<int32_t> token_id(std::string_view token) const = 0;
};

// Loads `dir/tokenizer.json` (and `dir/tokenizer_config.json` for add_bos_token / eos / bos names
// when present). Errors name the file and the key that was wrong or unsupported.
[[nodiscard]] expected<std::unique_ptr<tokenizer>> load_tokenizer_json(const std::string& dir);

// The same from the two files' texts; messages name `name`/tokenizer.json and
// `name`/tokenizer_config.json (an empty config text is an error: pass "{}" for none).
[[nodiscard]] expected<std::unique_ptr<tokenizer>> load_tokenizer_json_text(
    std::string_view tokenizer_json, std::string_view config_json, const std::string& name);

// Loads the tokenizer embedded in a GGUF file's metadata.
[[nodiscard]] expected<std::unique_ptr<tokenizer>> load_tokenizer_gguf(const gguf_file& file);

// The tokenizer layouts a vocabulary can be trained for (each as the real family ships it).
enum class tokenizer_style {
  // GPT-2's: 256 byte tokens + merges over words of ByteLevel's own regex.
  byte_level,
  // Llama 3's: the same alphabet, words of Llama 3's regex (digits in threes), a Split +
  // ByteLevel pre-tokenizer and ignore_merges.
  llama3,
  // Qwen2's: NFC, words of Qwen2's regex (single digits), a Split + ByteLevel pre-tokenizer.
  qwen2,
  // Llama 2's: <unk> <s> </s>, 256 <0xXX> byte-fallback tokens, the corpus's characters, merges
  // over "▁"-spelled words; the legacy Prepend/Replace normalizer and the Strip decoder.
  sentencepiece,
};

// Trains a BPE tokenizer of `style` on `corpus` until the vocabulary has `vocab_size` entries
// (model tokens + the given special tokens; when the corpus runs out of pairs the rest is filled
// with "<|reserved_special_token_N|>" specials, as Llama 3 does). Returns tokenizer.json text.
// Deterministic for the same inputs. Used by `troupe model make-tiny` and the tokenizer tests.
[[nodiscard]] expected<std::string> train_bpe_tokenizer_json(
    std::string_view corpus, int32_t vocab_size, const std::vector<std::string>& specials,
    tokenizer_style style = tokenizer_style::byte_level);

// Converts `dir/tokenizer.json` (+ `dir/tokenizer_config.json`) into the GGUF tokenizer keys as
// llama.cpp's converter writes them: tokenizer.ggml.{model, pre, tokens, token_type, merges or
// scores, bos_token_id, eos_token_id, add_bos_token, add_eos_token, add_space_prefix} and
// tokenizer.chat_template when the config has one. Byte-level BPE is model "gpt2" with "pre"
// "llama-bpe" / "qwen2" / "gpt2" naming the split regex; SentencePiece BPE is model "llama" with
// scores that rank the merges. A tokenizer GGUF cannot describe (another regex, a normalizer
// llama.cpp does not apply, Metaspace's "first" scheme) is an error rather than a silently
// different tokenizer.
[[nodiscard]] expected<std::map<std::string, gguf_value>> tokenizer_gguf_metadata(
    const std::string& dir);

// An original English text (~31 KB: prose with digits, punctuation, accented Latin, a little CJK
// and emoji) that make-tiny trains the default model's tokenizer on.
[[nodiscard]] std::string_view default_training_corpus();

}  // namespace troupe::engine
