// Runs the pre-tokenizer steps over valid UTF-8 runs; invalid bytes are isolated first so that the
// regex engine only ever sees valid text (it is told not to check, for speed).
#include "engine/tokenizer/pre_tokenizer.hpp"

#include "engine/tokenizer/utf8.hpp"

namespace troupe::engine {
namespace {

// A piece of text between steps. `isolated`: an invalid byte, passed through every step as is.
// `continues`: the piece was cut from its predecessor only because an invalid byte sat between
// them, so steps that act once per piece (prefix space, Metaspace's prepend) skip it.
struct piece {
  std::string_view text;
  bool isolated = false;
  bool continues = false;
};

using behavior = pre_step::behavior;

// Hugging Face's Split: the regex matches delimiters (or, inverted, the pieces to keep), and the
// behaviour says where each delimiter goes.
void split_piece(const piece& p, const regex_splitter& re, const pre_step& step,
                 std::vector<piece>& out) {
  std::vector<std::string_view> parts;
  std::vector<bool> delim;
  re.split_marked(p.text, parts, delim);
  if (step.invert) delim.flip();
  bool first = true;
  const auto emit = [&](std::string_view t) {
    if (t.empty()) return;
    out.push_back({t, false, first ? p.continues : false});
    first = false;
  };
  // Joins two adjacent views of the same text.
  const auto join = [](std::string_view a, std::string_view b) {
    return std::string_view(a.data(), a.size() + b.size());
  };
  // A delimiter joins a neighbouring piece only when that piece is not a delimiter itself, so
  // "a--b" MergedWithPrevious is "a-", "-", "b" and MergedWithNext is "a", "-", "-b"; Contiguous
  // joins runs of delimiters.
  std::string_view last;  // the piece not yet emitted (MergedWithPrevious, Contiguous)
  bool have_last = false;
  bool last_is_delim = false;
  for (size_t k = 0; k < parts.size(); ++k) {
    const std::string_view t = parts[k];
    const bool d = delim[k];
    switch (step.split_behavior) {
      case behavior::removed:
        if (!d) emit(t);
        break;
      case behavior::isolated:
        emit(t);
        break;
      case behavior::merged_with_next:
        if (d && k + 1 < parts.size() && !delim[k + 1]) {
          emit(join(t, parts[k + 1]));
          ++k;
        } else {
          emit(t);
        }
        break;
      case behavior::merged_with_previous:
      case behavior::contiguous: {
        const bool joins = step.split_behavior == behavior::merged_with_previous
                               ? d && have_last && !last_is_delim
                               : d && have_last && last_is_delim;
        if (joins) {
          last = join(last, t);
          last_is_delim = true;
        } else {
          if (have_last) emit(last);
          last = t;
          have_last = true;
          last_is_delim = d;
        }
        break;
      }
    }
  }
  if (have_last) emit(last);
}

// Metaspace: spaces become the replacement, the replacement is prepended per the scheme, and
// (split_words) the text is cut before each replacement.
void metaspace_piece(const piece& p, const pre_step& step, bool prepend,
                     std::vector<piece>& out, std::deque<std::string>& storage) {
  std::string& s = storage.emplace_back();
  s.reserve(p.text.size() + step.replacement.size());
  if (prepend && !p.text.starts_with(step.replacement) &&
      !(p.text.starts_with(' ') && !step.replacement.empty())) {
    s += step.replacement;
  }
  for (const char c : p.text) {
    if (c == ' ') {
      s += step.replacement;
    } else {
      s.push_back(c);
    }
  }
  const std::string_view text = s;
  if (!step.split_words || step.replacement.empty()) {
    out.push_back({text, false, p.continues});
    return;
  }
  size_t start = 0;
  bool first = true;
  for (size_t hit = text.find(step.replacement, 1); hit != std::string_view::npos;
       hit = text.find(step.replacement, hit + step.replacement.size())) {
    if (hit > start) {
      out.push_back({text.substr(start, hit - start), false, first ? p.continues : false});
      first = false;
    }
    start = hit;
  }
  if (start < text.size()) out.push_back({text.substr(start), false, first ? p.continues : false});
}

}  // namespace

expected<pre_tokenizer> pre_tokenizer::create(std::vector<pre_step> steps) {
  pre_tokenizer pt;
  for (auto& step : steps) {
    compiled_step c{std::move(step), nullptr};
    if (c.step.what == pre_step::kind::split) {
      auto re = regex_splitter::create(c.step.pattern);
      if (!re) return fail(c.step.key + ": " + re.message());
      c.regex = std::shared_ptr<const regex_splitter>(std::move(*re));
    }
    pt.steps_.push_back(std::move(c));
  }
  return pt;
}

void pre_tokenizer::split(std::string_view text, bool at_input_start,
                          std::vector<std::string_view>& words,
                          std::deque<std::string>& storage) const {
  std::vector<piece> pieces;
  size_t run_start = 0;
  for (size_t i = 0; i < text.size();) {
    const auto seq = utf8_check(text, i);
    if (seq.status == utf8_status::valid) {
      i += seq.length;
      continue;
    }
    if (i > run_start) pieces.push_back({text.substr(run_start, i - run_start), false, i > 0 && run_start > 0});
    pieces.push_back({text.substr(i, 1), true, i > 0});
    run_start = ++i;
  }
  if (run_start < text.size()) pieces.push_back({text.substr(run_start), false, run_start > 0});

  std::vector<piece> next;
  for (const auto& c : steps_) {
    next.clear();
    for (size_t k = 0; k < pieces.size(); ++k) {
      const piece& p = pieces[k];
      if (p.isolated) {
        next.push_back(p);
        continue;
      }
      switch (c.step.what) {
        case pre_step::kind::split:
          split_piece(p, *c.regex, c.step, next);
          break;
        case pre_step::kind::prefix_space:
          if (p.continues || p.text.starts_with(' ')) {
            next.push_back(p);
          } else {
            std::string& prefixed = storage.emplace_back(1, ' ');
            prefixed.append(p.text);
            next.push_back({prefixed, false, false});
          }
          break;
        case pre_step::kind::metaspace: {
          const bool prepend =
              !p.continues &&
              (c.step.prepend_scheme == pre_step::prepend::always ||
               (c.step.prepend_scheme == pre_step::prepend::first && at_input_start && k == 0));
          metaspace_piece(p, c.step, prepend, next, storage);
          break;
        }
      }
    }
    pieces.swap(next);
  }
  for (const auto& p : pieces) words.push_back(p.text);
}

}  // namespace troupe::engine
