// A Cap'n Proto client's connection stream that bounds what an unauthenticated client can make the
// server hold. Until authenticated() is called, it reads the messages' framing as the bytes pass
// (the segment count and sizes at the head of each message) and ends the connection, before Cap'n
// Proto allocates anything, once the client has sent or declared more than `limit` bytes in all.
// After authentication it passes every byte through (the reader options bound each message).
//
// Threading: the kj thread of the connection.
#pragma once

#include <kj/async-io.h>

#include <cstddef>
#include <cstdint>

namespace troupe::frontend::rpc {

class preauth_stream final : public kj::AsyncIoStream {
 public:
  preauth_stream(kj::Own<kj::AsyncIoStream> inner, size_t limit) : inner_(kj::mv(inner)), limit_(limit) {}

  // The client has authenticated: no bound from now on.
  void authenticated() { open_ = true; }
  [[nodiscard]] bool is_authenticated() const { return open_; }

  kj::Promise<size_t> tryRead(void* buffer, size_t min_bytes, size_t max_bytes) override;
  kj::Promise<void> write(const void* buffer, size_t size) override { return inner_->write(buffer, size); }
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override {
    return inner_->write(pieces);
  }
  kj::Promise<void> whenWriteDisconnected() override { return inner_->whenWriteDisconnected(); }
  void shutdownWrite() override { inner_->shutdownWrite(); }
  void abortRead() override { inner_->abortRead(); }
  void setsockopt(int level, int option, const void* value, uint length) override {
    inner_->setsockopt(level, option, value, length);
  }
  void getpeername(struct sockaddr* addr, uint* length) override { inner_->getpeername(addr, length); }

 private:
  // Follows the framing over `n` new bytes; throws when the client goes past the bound.
  void account(const kj::byte* bytes, size_t n);

  kj::Own<kj::AsyncIoStream> inner_;
  size_t limit_;
  bool open_ = false;
  uint64_t committed_ = 0;  // bytes read plus the rest of the message being read, as declared
  // The framing of the message being read: its header's bytes so far, and the body bytes left.
  uint32_t header_[16] = {};  // the segment count word and up to 15 sizes (more segments are refused)
  size_t header_bytes_ = 0;
  size_t header_size_ = 0;     // known once the first word is in: 4 + 4 * segments, padded to 8
  uint64_t body_left_ = 0;
};

}  // namespace troupe::frontend::rpc
