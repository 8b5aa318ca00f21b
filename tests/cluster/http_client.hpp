// A small blocking HTTP/1.1 client for the cluster tests: one request per connection
// (Connection: close), chunked responses decoded, server-sent events split out. Raw enough to send
// malformed requests and to hang up mid-stream.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace troupe::test {

struct http_response {
  int status = 0;           // 0: no response (connection failed or closed early)
  std::string headers;
  std::string body;         // de-chunked
  std::string error;        // what went wrong at the socket level
};

class http_connection {
 public:
  http_connection(uint16_t port, int timeout_s = 120) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{timeout_s, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~http_connection() { close(); }
  http_connection(const http_connection&) = delete;
  http_connection& operator=(const http_connection&) = delete;

  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] int fd() const { return fd_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool send_raw(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(size_t(n));
    }
    return true;
  }

  // Reads more bytes into the buffer; false at EOF or error.
  bool read_more() {
    char buf[16384];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    raw_.append(buf, size_t(n));
    return true;
  }

  // Reads until the headers are complete; returns the status (0 if none).
  int read_head() {
    while (raw_.find("\r\n\r\n") == std::string::npos)
      if (!read_more()) return 0;
    const size_t end = raw_.find("\r\n\r\n");
    head_ = raw_.substr(0, end + 2);
    raw_.erase(0, end + 4);
    if (head_.size() < 12) return 0;
    return std::atoi(head_.c_str() + 9);
  }

  [[nodiscard]] const std::string& head() const { return head_; }
  // The Content-Length of the response, if it has one (KJ keeps the connection open after a
  // response whatever "Connection: close" says, so its end is known only from the length).
  [[nodiscard]] std::optional<size_t> content_length() const {
    std::string h = head_;
    for (auto& c : h) c = char(std::tolower(c));
    const size_t at = h.find("content-length:");
    if (at == std::string::npos) return std::nullopt;
    return size_t(std::strtoull(h.c_str() + at + 15, nullptr, 10));
  }
  [[nodiscard]] bool chunked() const {
    std::string h = head_;
    for (auto& c : h) c = char(std::tolower(c));
    return h.find("transfer-encoding: chunked") != std::string::npos;
  }

  // The body decoded so far, reading until `pred(body)` holds or the connection ends.
  template <class Pred>
  std::string& read_body_until(Pred pred) {
    while (true) {
      decode();
      if (pred(body_) || done_) return body_;
      if (!read_more()) {
        decode();
        done_ = true;
        return body_;
      }
    }
  }

  [[nodiscard]] bool complete() const { return done_; }

 private:
  void decode() {
    if (!chunked()) {
      body_ += raw_;
      raw_.clear();
      if (auto n = content_length(); n && body_.size() >= *n) done_ = true;
      return;
    }
    while (true) {
      const size_t eol = raw_.find("\r\n");
      if (eol == std::string::npos) return;
      const size_t len = std::strtoul(raw_.c_str(), nullptr, 16);
      if (raw_.size() < eol + 2 + len + 2) return;
      if (len == 0) {
        done_ = true;
        raw_.clear();
        return;
      }
      body_.append(raw_, eol + 2, len);
      raw_.erase(0, eol + 2 + len + 2);
    }
  }

  int fd_ = -1;
  bool ok_ = false;
  bool done_ = false;
  std::string raw_, head_, body_;
};

// One whole request.
inline http_response http_request(uint16_t port, const std::string& method, const std::string& path,
                                  const std::string& body = {}, const std::string& extra_headers = {}) {
  http_response r;
  http_connection c(port);
  if (!c.ok()) {
    r.error = "connect failed";
    return r;
  }
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" + extra_headers;
  if (!body.empty() || method == "POST")
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  if (!c.send_raw(req)) {
    r.error = "send failed";
    return r;
  }
  r.status = c.read_head();
  r.headers = c.head();
  if (r.status == 0) {
    r.error = "no response";
    return r;
  }
  r.body = c.read_body_until([](const std::string&) { return false; });
  return r;
}

// The "data:" payloads of a server-sent-event body, in order.
inline std::vector<std::string> sse_events(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    const size_t at = body.find("data: ", pos);
    if (at == std::string::npos) break;
    const size_t end = body.find("\n\n", at);
    if (end == std::string::npos) break;
    out.push_back(body.substr(at + 6, end - at - 6));
    pos = end + 2;
  }
  return out;
}

}  // namespace troupe::test
