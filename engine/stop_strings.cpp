// stop_string_matcher.
#include "engine/stop_strings.hpp"

#include <algorithm>

namespace troupe::engine {

stop_string_matcher::stop_string_matcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
  for (const auto& s : stops_) longest_ = std::max(longest_, s.size());
}

std::optional<size_t> stop_string_matcher::find(std::string_view text, size_t from) const {
  if (stops_.empty()) return std::nullopt;
  const size_t start = from >= longest_ - 1 ? from - (longest_ - 1) : 0;
  std::optional<size_t> best;
  for (const auto& s : stops_) {
    const size_t p = text.find(s, start);
    if (p != std::string_view::npos && (!best || p < *best)) best = p;
  }
  return best;
}

size_t stop_string_matcher::held_back(std::string_view text) const {
  size_t held = 0;
  for (const auto& s : stops_)
    for (size_t len = std::min(s.size() - 1, text.size()); len > held; --len)
      if (text.substr(text.size() - len) == std::string_view(s).substr(0, len)) {
        held = len;
        break;
      }
  return held;
}

}  // namespace troupe::engine
