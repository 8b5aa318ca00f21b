// The description of a byte-level BPE tokenizer that both file formats are read into (and that
// tokenizer_gguf_metadata writes out): one place decides behaviour, whatever the source.
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

struct bpe_spec {
  std::string source;  // the file, for messages
  // The BPE model's vocabulary by id (byte-level spelling); an empty string is no model token at
  // that id (an added token alone, or a hole in the ids).
  std::vector<std::string> vocab;
  std::vector<std::pair<std::string, std::string>> merges;  // rank order
  std::string merges_key = "merges";                        // how errors name them (after source)
  std::vector<added_token> added;
  // Pre-tokenizer steps in order: a regex split, or (prefix_space) ByteLevel's add_prefix_space.
  struct pre_step {
    std::string pattern;
    bool prefix_space = false;
    std::string key;  // where the pattern came from, for messages
  };
  std::vector<pre_step> pre_steps;
  bool ignore_merges = false;
  std::optional<int32_t> unk;
  std::optional<int32_t> bos;
  std::optional<int32_t> eos;
  std::vector<int32_t> extra_eos;  // more ids ending generation (GGUF eot/eom ids)
  bool add_bos = false;
  std::string chat_template;
};

// Names of added specials that end generation besides eos.
inline constexpr std::string_view end_of_turn_names[] = {"<|eot_id|>", "<|eom_id|>", "<|im_end|>",
                                                         "<|endoftext|>"};

// Builds the tokenizer; errors (bad regex, bad merge, ids out of range) name spec.source.
[[nodiscard]] expected<std::unique_ptr<tokenizer>> make_byte_bpe_tokenizer(bpe_spec spec);

}  // namespace troupe::engine
