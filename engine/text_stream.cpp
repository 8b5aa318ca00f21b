// Streaming detokenization with stop strings (see text_stream.hpp).
#include "engine/text_stream.hpp"

#include <algorithm>

namespace troupe::engine {

text_stream::text_stream(const tokenizer& tok, std::vector<std::string> stops, bool skip_special,
                         bool at_text_start)
    : decoder_(tok, skip_special, at_text_start), stops_(std::move(stops)) {}

text_stream::delta text_stream::push(int32_t token, bool stop_token) {
  const size_t before = text_.size();
  if (!stop_token) text_ += decoder_.push(token);
  delta out;
  if (auto at = stops_.find(text_, before)) {
    text_.resize(*at);
    out.stop_string = true;
  }
  const bool ended = stop_token || out.stop_string;
  const size_t ready = ended ? text_.size() : text_.size() - stops_.held_back(text_);
  if (ready > emitted_) out.text = text_.substr(emitted_, ready - emitted_);
  emitted_ = std::max(emitted_, ready);
  return out;
}

std::string text_stream::finish() {
  text_ += decoder_.flush();
  std::string rest = emitted_ < text_.size() ? text_.substr(emitted_) : std::string();
  emitted_ = text_.size();
  return rest;
}

}  // namespace troupe::engine
