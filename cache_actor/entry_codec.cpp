// Encoding and checked decoding of cache entries for Redis (see entry_codec.hpp for the layout).
#include "cache_actor/entry_codec.hpp"

#include <bit>
#include <limits>

namespace troupe::cache {

namespace {

using cluster::cache_entry;
using cluster::token_chunk;
using cluster::token_logprob;

constexpr std::string_view magic = "TRCE";
// The least bytes one element takes, to bound a count by what remains before allocating.
constexpr size_t min_sample_bytes = 4 + 1 + 4 + 4 + 4 + 4;  // sample, finish, reserved, T, L, E
constexpr size_t min_logprob_bytes = 4 + 4 + 4;             // token, logprob, N
constexpr size_t top_bytes = 4 + 4;

class writer {
 public:
  void u8(uint8_t v) { out_.push_back(char(v)); }
  void u16(uint16_t v) { for (int i = 0; i < 2; ++i) u8(uint8_t(v >> (8 * i))); }
  void u32(uint32_t v) { for (int i = 0; i < 4; ++i) u8(uint8_t(v >> (8 * i))); }
  void i32(int32_t v) { u32(uint32_t(v)); }
  void f32(float v) { u32(std::bit_cast<uint32_t>(v)); }
  void bytes(std::string_view b) { out_.append(b); }
  [[nodiscard]] std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class reader {
 public:
  explicit reader(std::string_view in) : in_(in) {}
  [[nodiscard]] size_t offset() const { return pos_; }
  [[nodiscard]] size_t remaining() const { return in_.size() - pos_; }
  bool u8(uint8_t& v) {
    if (remaining() < 1) return false;
    v = uint8_t(in_[pos_++]);
    return true;
  }
  bool u16(uint16_t& v) {
    if (remaining() < 2) return false;
    v = uint16_t(byte(0) | byte(1) << 8);
    pos_ += 2;
    return true;
  }
  bool u32(uint32_t& v) {
    if (remaining() < 4) return false;
    v = byte(0) | byte(1) << 8 | byte(2) << 16 | byte(3) << 24;
    pos_ += 4;
    return true;
  }
  bool i32(int32_t& v) {
    uint32_t u = 0;
    if (!u32(u)) return false;
    v = int32_t(u);
    return true;
  }
  bool f32(float& v) {
    uint32_t u = 0;
    if (!u32(u)) return false;
    v = std::bit_cast<float>(u);
    return true;
  }
  bool bytes(size_t n, std::string& out) {
    if (remaining() < n) return false;
    out.assign(in_.substr(pos_, n));
    pos_ += n;
    return true;
  }
  // Reads a count of elements of at least `min_bytes` each, refused when they cannot all fit.
  bool count(size_t min_bytes, uint32_t& n) { return u32(n) && uint64_t(n) * min_bytes <= remaining(); }

 private:
  [[nodiscard]] uint32_t byte(size_t i) const { return uint8_t(in_[pos_ + i]); }
  std::string_view in_;
  size_t pos_ = 0;
};

// A stored completion's samples all ended normally: a replay must end every stream it starts.
bool finished(finish_reason finish) {
  return completed(finish);
}

bool fits_u32(size_t n) { return n <= std::numeric_limits<uint32_t>::max(); }

error corrupt(const reader& r, const std::string& what) {
  return fail("corrupt cache value at byte " + std::to_string(r.offset()) + ": " + what);
}

}  // namespace

expected<std::string> encode_entry(std::string_view key_bytes, const cache_entry& entry) {
  if (!fits_u32(key_bytes.size()) || !fits_u32(entry.samples.size())) return fail("cache entry too large to encode");
  writer w;
  w.bytes(magic);
  w.u16(entry_format_version);
  w.u32(uint32_t(key_bytes.size()));
  w.bytes(key_bytes);
  w.u32(uint32_t(entry.samples.size()));
  for (size_t i = 0; i < entry.samples.size(); ++i) {
    const token_chunk& s = entry.samples[i];
    if (s.sample != int32_t(i)) return fail("cache entry: sample " + std::to_string(s.sample) + " out of order");
    if (!finished(s.finish)) return fail("cache entry: sample " + std::to_string(i) + " did not finish by stop or length");
    if (!s.logprobs.empty() && s.logprobs.size() != s.tokens.size())
      return fail("cache entry: logprobs neither absent nor one per token");
    if (!fits_u32(s.tokens.size()) || !fits_u32(s.error.message.size())) return fail("cache entry too large to encode");
    w.i32(s.sample);
    w.u8(uint8_t(s.finish));
    w.i32(0);  // reserved (format 1 kept an HTTP-like status here; entries only hold finished samples)
    w.u32(uint32_t(s.tokens.size()));
    for (int32_t t : s.tokens) {
      if (t < 0) return fail("cache entry: negative token id");
      w.i32(t);
    }
    w.u32(uint32_t(s.logprobs.size()));
    for (const token_logprob& lp : s.logprobs) {
      if (lp.top_tokens.size() != lp.top_logprobs.size())
        return fail("cache entry: top_tokens and top_logprobs differ in length");
      if (!fits_u32(lp.top_tokens.size())) return fail("cache entry too large to encode");
      w.i32(lp.token);
      w.f32(lp.logprob);
      w.u32(uint32_t(lp.top_tokens.size()));
      for (size_t i = 0; i < lp.top_tokens.size(); ++i) {
        w.i32(lp.top_tokens[i]);
        w.f32(lp.top_logprobs[i]);
      }
    }
    w.u32(uint32_t(s.error.message.size()));
    w.bytes(s.error.message);
  }
  return w.take();
}

expected<decoded_entry> decode_entry(std::string_view bytes) {
  reader r(bytes);
  std::string head;
  if (!r.bytes(magic.size(), head) || head != magic) return corrupt(r, "not a Troupe cache entry (no magic)");
  uint16_t version = 0;
  if (!r.u16(version)) return corrupt(r, "truncated");
  if (version != entry_format_version)
    return corrupt(r, "format version " + std::to_string(version) + ", expected " +
                          std::to_string(entry_format_version));
  decoded_entry out;
  uint32_t key_size = 0;
  if (!r.u32(key_size) || !r.bytes(key_size, out.key_bytes)) return corrupt(r, "key length past the end");
  uint32_t samples = 0;
  if (!r.count(min_sample_bytes, samples)) return corrupt(r, "sample count past the end");
  out.entry.samples.resize(samples);
  for (size_t i = 0; i < out.entry.samples.size(); ++i) {
    token_chunk& s = out.entry.samples[i];
    uint8_t finish = 0;
    uint32_t tokens = 0;
    int32_t reserved = 0;
    if (!r.i32(s.sample) || !r.u8(finish) || !r.i32(reserved)) return corrupt(r, "truncated sample");
    if (s.sample != int32_t(i)) return corrupt(r, "sample " + std::to_string(s.sample) + " out of order");
    s.finish = finish_reason(int8_t(finish));
    if (!finished(s.finish)) return corrupt(r, "finish " + std::to_string(int8_t(finish)) + " is not stop or length");
    if (!r.count(4, tokens)) return corrupt(r, "token count past the end");
    s.tokens.resize(tokens);
    for (int32_t& t : s.tokens) {
      if (!r.i32(t)) return corrupt(r, "truncated tokens");
      if (t < 0) return corrupt(r, "negative token id");
    }
    uint32_t logprobs = 0;
    if (!r.count(min_logprob_bytes, logprobs)) return corrupt(r, "logprob count past the end");
    if (logprobs != 0 && logprobs != tokens) return corrupt(r, "logprobs neither absent nor one per token");
    s.logprobs.resize(logprobs);
    for (token_logprob& lp : s.logprobs) {
      uint32_t top = 0;
      if (!r.i32(lp.token) || !r.f32(lp.logprob)) return corrupt(r, "truncated logprob");
      if (!r.count(top_bytes, top)) return corrupt(r, "top logprob count past the end");
      lp.top_tokens.resize(top);
      lp.top_logprobs.resize(top);
      for (uint32_t i = 0; i < top; ++i)
        if (!r.i32(lp.top_tokens[i]) || !r.f32(lp.top_logprobs[i])) return corrupt(r, "truncated top logprobs");
    }
    uint32_t error_size = 0;
    if (!r.u32(error_size) || !r.bytes(error_size, s.error.message)) return corrupt(r, "error text past the end");
  }
  if (r.remaining() != 0) return corrupt(r, std::to_string(r.remaining()) + " bytes after the entry");
  return out;
}

}  // namespace troupe::cache
