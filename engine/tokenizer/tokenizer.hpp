// Text <-> token ids. This model: byte-level BPE (GPT-2 / Llama 3 / Qwen2 family) loaded
// from a Hugging Face tokenizer.json or from GGUF metadata (tokenizer.ggml.model == "gpt2").
// Built to grow (next issue: SentencePiece BPE, more pre-tokenizers): one class per model kind
// behind this interface.
#pragma once

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
  bool add_bos = false;          // prepend bos when encoding a prompt
};

// Thread-safety: all const methods may be called concurrently.
class tokenizer {
 public:
  virtual ~tokenizer() = default;

  // Encodes text. Special/added tokens written literally in `text` are matched when
  // `parse_special` is true. Prepends bos when specials().add_bos and `add_special` are true.
  [[nodiscard]] virtual std::vector<int32_t> encode(std::string_view text, bool add_special = true,
                                                    bool parse_special = true) const = 0;

  // The raw bytes one token stands for (byte-level tokens mapped back to bytes; may be a partial
  // UTF-8 sequence). Special tokens give their text. An out-of-range id gives an empty string.
  [[nodiscard]] virtual std::string token_bytes(int32_t id) const = 0;

  // Decodes ids to text; invalid UTF-8 produced by a partial sequence at the end is kept as bytes.
  [[nodiscard]] virtual std::string decode(const std::vector<int32_t>& ids,
                                           bool skip_special = false) const = 0;

  [[nodiscard]] virtual int32_t vocab_size() const = 0;
  [[nodiscard]] virtual bool is_special(int32_t id) const = 0;
  [[nodiscard]] virtual const special_tokens& specials() const = 0;
  // Id of a token by its exact vocabulary string, if any.
  [[nodiscard]] virtual std::optional<int32_t> token_id(std::string_view token) const = 0;
};

// Loads `dir/tokenizer.json` (and `dir/tokenizer_config.json` for add_bos_token / eos / bos names
// when present). Errors name the file and the key that was wrong or unsupported.
[[nodiscard]] expected<std::unique_ptr<tokenizer>> load_tokenizer_json(const std::string& dir);

// Loads the tokenizer embedded in a GGUF file's metadata.
[[nodiscard]] expected<std::unique_ptr<tokenizer>> load_tokenizer_gguf(const gguf_file& file);

// Trains a byte-level BPE tokenizer on `corpus` until the vocabulary has `vocab_size` entries
// (256 byte tokens + merges + the given special tokens; when the corpus runs out of pairs the rest
// is filled with "<|reserved_special_token_N|>" specials, as Llama 3 does). Returns tokenizer.json
// text. Deterministic for the same inputs. Used by `troupe model make-tiny`.
[[nodiscard]] expected<std::string> train_bpe_tokenizer_json(
    std::string_view corpus, int32_t vocab_size, const std::vector<std::string>& specials);

// Converts `dir/tokenizer.json` (+ `dir/tokenizer_config.json`) into the GGUF tokenizer keys as
// llama.cpp's converter writes them: tokenizer.ggml.{model, pre, tokens, token_type, merges,
// bos_token_id, eos_token_id, add_bos_token} and tokenizer.chat_template when the config has one.
// "pre" is "llama-bpe" / "qwen2" when the split regex is Llama 3's / Qwen2's and "gpt2" for the
// plain ByteLevel regex; a pre-tokenizer GGUF cannot name (another regex, several splits,
// add_prefix_space) is an error rather than a silently different tokenizer.
[[nodiscard]] expected<std::map<std::string, gguf_value>> tokenizer_gguf_metadata(
    const std::string& dir);

// An original English text (~31 KB: prose with digits, punctuation, accented Latin, a little CJK
// and emoji) that make-tiny trains the default model's tokenizer on.
[[nodiscard]] std::string_view default_training_corpus();

}  // namespace troupe::engine
