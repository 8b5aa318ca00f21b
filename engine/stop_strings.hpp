// Finds stop strings in streamed text and decides how much text is safe to emit: text that could
// still grow into a stop string is held back until the next token settles it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::engine {

class stop_string_matcher {
 public:
  explicit stop_string_matcher(std::vector<std::string> stops);

  // Position of the earliest stop string that starts at or after `from` - (longest stop - 1), if any.
  [[nodiscard]] std::optional<size_t> find(std::string_view text, size_t from) const;

  // Length of the longest suffix of `text` that is a proper prefix of some stop string.
  [[nodiscard]] size_t held_back(std::string_view text) const;

 private:
  std::vector<std::string> stops_;
  size_t longest_ = 0;
};

}  // namespace troupe::engine
