// PCRE2-backed splitting. The subject is validated once by the caller and matched with
// PCRE2_NO_UTF_CHECK, because PCRE2 would otherwise re-check the whole rest of the subject on every
// call, which is quadratic in the text length.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "engine/tokenizer/regex_split.hpp"

#include <pcre2.h>

#include <memory>

namespace troupe::engine {
namespace {

// Bounds the work of one match so that a pathological pattern in an untrusted file cannot hang
// a request; the JIT stack bounds its memory.
constexpr uint32_t match_limit = 10'000'000;
constexpr size_t jit_stack_start = 32 * 1024;
constexpr size_t jit_stack_max = 1024 * 1024;

struct match_state {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;
  ~match_state() {
    if (data) pcre2_match_data_free(data);
    if (context) pcre2_match_context_free(context);
    if (stack) pcre2_jit_stack_free(stack);
  }
};

}  // namespace

expected<std::unique_ptr<regex_splitter>> regex_splitter::create(std::string pattern) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof message);
    return fail("bad regex at offset " + std::to_string(error_offset) + ": " +
                reinterpret_cast<const char*>(message));
  }
  // Without JIT (unsupported CPU, or a JIT memory failure) the interpreter still gives the same
  // results, only slower, so a JIT failure is not an error.
  (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return std::unique_ptr<regex_splitter>(new regex_splitter(std::move(pattern), code));
}

regex_splitter::~regex_splitter() { pcre2_code_free(code_); }

void regex_splitter::split(std::string_view text, std::vector<std::string_view>& out) const {
  std::vector<bool> is_match;
  split_marked(text, out, is_match);
}

void regex_splitter::split_marked(std::string_view text, std::vector<std::string_view>& out,
                                  std::vector<bool>& is_match) const {
  if (text.empty()) return;
  match_state st;
  st.data = pcre2_match_data_create_from_pattern(code_, nullptr);
  st.context = pcre2_match_context_create(nullptr);
  st.stack = pcre2_jit_stack_create(jit_stack_start, jit_stack_max, nullptr);
  if (st.data == nullptr || st.context == nullptr) {
    out.push_back(text);
    is_match.push_back(false);
    return;
  }
  pcre2_set_match_limit(st.context, match_limit);
  if (st.stack) pcre2_jit_stack_assign(st.context, nullptr, st.stack);

  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t gap_start = 0;  // start of the text not yet handed out
  size_t pos = 0;
  while (pos < text.size()) {
    const int rc =
        pcre2_match(code_, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, st.data, st.context);
    if (rc < 0) break;  // no more matches, or a limit was hit: the rest is one piece
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
    size_t begin = ov[0], end = ov[1];
    if (end <= begin) {
      // An empty match: step over one character and look again (never loop in place).
      pos = begin + 1;
      while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
      continue;
    }
    if (begin > gap_start) {
      out.push_back(text.substr(gap_start, begin - gap_start));
      is_match.push_back(false);
    }
    out.push_back(text.substr(begin, end - begin));
    is_match.push_back(true);
    gap_start = pos = end;
  }
  if (gap_start < text.size()) {
    out.push_back(text.substr(gap_start));
    is_match.push_back(false);
  }
}

std::string regex_escape(std::string_view literal) {
  std::string out;
  for (const char c : literal) {
    if (std::string_view("\\^$.|?*+()[]{}-#/ ").find(c) != std::string_view::npos)
      out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

}  // namespace troupe::engine
