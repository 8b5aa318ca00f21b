// preauth_stream (see preauth_stream.hpp).
#include "frontend/rpc/preauth_stream.hpp"

#include <cstring>
#include <string>

namespace troupe::frontend::rpc {

namespace {

kj::Exception too_much(const std::string& why) {
  return kj::Exception(kj::Exception::Type::DISCONNECTED, __FILE__, __LINE__,
                       kj::heapString("rpc: a client " + why + " before authenticating; connection closed"));
}

}  // namespace

kj::Promise<size_t> preauth_stream::tryRead(void* buffer, size_t min_bytes, size_t max_bytes) {
  if (open_) return inner_->tryRead(buffer, min_bytes, max_bytes);
  return inner_->tryRead(buffer, min_bytes, max_bytes).then([this, buffer](size_t n) -> size_t {
    if (!open_) account(static_cast<const kj::byte*>(buffer), n);
    return n;
  });
}

void preauth_stream::account(const kj::byte* bytes, size_t n) {
  while (n > 0) {
    if (body_left_ > 0) {  // the message's segments: already counted when its header was read
      const size_t take = size_t(std::min<uint64_t>(body_left_, n));
      body_left_ -= take;
      bytes += take;
      n -= take;
      continue;
    }
    // The header of the next message, a byte at a time (it is a few words).
    if (header_bytes_ < sizeof header_) reinterpret_cast<kj::byte*>(header_)[header_bytes_] = *bytes;
    ++header_bytes_;
    ++bytes;
    --n;
    ++committed_;
    if (header_bytes_ == 4) {
      const uint32_t segments = header_[0] + 1;  // little-endian on every platform we build for
      if (segments > 15) throw too_much("sent a message of " + std::to_string(segments) + " segments");
      header_size_ = (4 + 4 * size_t(segments) + 7) / 8 * 8;
    }
    if (header_size_ > 0 && header_bytes_ % 4 == 0 && header_bytes_ <= 4 + 4 * (header_[0] + 1) && header_bytes_ > 4)
      committed_ += uint64_t(header_[header_bytes_ / 4 - 1]) * 8;  // a segment's declared size
    if (committed_ > limit_)
      throw too_much("sent or declared more than " + std::to_string(limit_) + " bytes");
    if (header_size_ > 0 && header_bytes_ == header_size_) {
      body_left_ = 0;
      for (uint32_t s = 1; s <= header_[0] + 1; ++s) body_left_ += uint64_t(header_[s]) * 8;
      header_bytes_ = 0;
      header_size_ = 0;
      std::memset(header_, 0, sizeof header_);
    }
  }
}

}  // namespace troupe::frontend::rpc
