// Runs the pre-tokenizer steps over valid UTF-8 runs; invalid bytes are isolated first so that the
// regex engine only ever sees valid text (it is told not to check, for speed).
#include "engine/tokenizer/pre_tokenizer.hpp"

#include "engine/tokenizer/utf8.hpp"

namespace troupe::engine {

void pre_tokenizer::split(std::string_view text, std::vector<std::string_view>& words,
                          std::deque<std::string>& storage) const {
  std::vector<std::string_view> pieces;
  std::vector<bool> isolated;  // an invalid byte: passed through every step untouched
  size_t run_start = 0;
  for (size_t i = 0; i < text.size();) {
    const auto seq = utf8_check(text, i);
    if (seq.status == utf8_status::valid) {
      i += seq.length;
      continue;
    }
    if (i > run_start) {
      pieces.push_back(text.substr(run_start, i - run_start));
      isolated.push_back(false);
    }
    pieces.push_back(text.substr(i, 1));
    isolated.push_back(true);
    run_start = ++i;
  }
  if (run_start < text.size()) {
    pieces.push_back(text.substr(run_start));
    isolated.push_back(false);
  }

  std::vector<std::string_view> next;
  std::vector<bool> next_isolated;
  for (const auto& step : steps_) {
    next.clear();
    next_isolated.clear();
    for (size_t p = 0; p < pieces.size(); ++p) {
      if (isolated[p]) {
        next.push_back(pieces[p]);
        next_isolated.push_back(true);
      } else if (step.split) {
        const size_t before = next.size();
        step.split->split(pieces[p], next);
        next_isolated.resize(next_isolated.size() + (next.size() - before), false);
      } else if (!pieces[p].empty() && pieces[p].front() == ' ') {
        next.push_back(pieces[p]);
        next_isolated.push_back(false);
      } else {
        std::string& prefixed = storage.emplace_back(1, ' ');
        prefixed.append(pieces[p]);
        next.push_back(prefixed);
        next_isolated.push_back(false);
      }
    }
    pieces.swap(next);
    isolated.swap(next_isolated);
  }
  words.insert(words.end(), pieces.begin(), pieces.end());
}

}  // namespace troupe::engine
