// SentencePiece BPE ranks merges by the score of the token they make, not by a merge list: the
// merge list Hugging Face derives from such a model holds every split of every token into two
// vocabulary tokens, best-scored result first. Shared by the GGUF "llama" reader (which has only
// scores), the GGUF writer (which checks a merge list has that form) and the trainer.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace troupe::engine {

// Every (left, right) with left + right == vocab[t] for a mergeable token t, where left and right
// are themselves vocabulary tokens (split at UTF-8 character boundaries), ordered by t's score
// (higher first), then left's id, then right's id -- the order of Hugging Face's Llama 2 merges,
// whose whitespace-run tokens share one score. `mergeable[t]` false (control and byte tokens)
// keeps t out. Scores and mergeable are per id, as long as vocab.
[[nodiscard]] std::vector<std::pair<std::string, std::string>> merges_from_scores(
    const std::vector<std::string>& vocab, const std::vector<float>& scores,
    const std::vector<bool>& mergeable);

}  // namespace troupe::engine
