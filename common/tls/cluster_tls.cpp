// Mutual TLS on the cluster port (see cluster_tls.hpp).
#include "common/tls/cluster_tls.hpp"

#include <caf/openssl/manager.hpp>
#include <dlfcn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mutex>

// CAF 0.17's OpenSSL sessions call SSL_read, SSL_write, SSL_accept and SSL_connect without clearing
// the thread's OpenSSL error queue first, and then ask SSL_get_error, which reports any error left in
// the queue. All sessions share the middleman's thread, so one failed connection (a peer killed
// mid-session: "unexpected EOF"; a stranger's garbage handshake) left an error that made the next
// read on every *other* connection look failed, and CAF closed them all: killing one worker
// disconnected every worker from the router (tested). OpenSSL requires an empty queue before each
// I/O call; these definitions in the executable interpose the four functions for the whole process
// (the dynamic linker resolves libcaf_openssl's calls to them) and clear the queue, then call
// libssl's own. Harmless for any other TLS user: it is what OpenSSL asks of every caller.
namespace troupe::tls {
namespace {

template <class F>
F next_symbol(const char* name) {
  void* f = ::dlsym(RTLD_NEXT, name);
  if (!f) std::abort();  // libssl is linked: cannot happen
  return reinterpret_cast<F>(f);
}

}  // namespace
}  // namespace troupe::tls

extern "C" {

int SSL_read(SSL* ssl, void* buf, int num) {
  static const auto real = troupe::tls::next_symbol<int (*)(SSL*, void*, int)>("SSL_read");
  ERR_clear_error();
  return real(ssl, buf, num);
}

int SSL_write(SSL* ssl, const void* buf, int num) {
  static const auto real = troupe::tls::next_symbol<int (*)(SSL*, const void*, int)>("SSL_write");
  ERR_clear_error();
  return real(ssl, buf, num);
}

int SSL_accept(SSL* ssl) {
  static const auto real = troupe::tls::next_symbol<int (*)(SSL*)>("SSL_accept");
  ERR_clear_error();
  return real(ssl);
}

int SSL_connect(SSL* ssl) {
  static const auto real = troupe::tls::next_symbol<int (*)(SSL*)>("SSL_connect");
  ERR_clear_error();
  return real(ssl);
}

}  // extern "C"

namespace troupe::tls {

namespace {

// Every TLS handshake of this process that verifies a peer (CAF's contexts set no host of their
// own) also requires tls::node_name among the peer certificate's names. Installed once, before the
// first connection; the built-in defaults are copied so that the purpose and trust checks stay.
expected<void> require_node_name() {
  static std::once_flag once;
  static std::string error;
  std::call_once(once, [] {
    for (const char* purpose : {"ssl_client", "ssl_server"}) {
      const X509_VERIFY_PARAM* builtin = X509_VERIFY_PARAM_lookup(purpose);
      X509_VERIFY_PARAM* p = X509_VERIFY_PARAM_new();
      if (!builtin || !p || X509_VERIFY_PARAM_set1(p, builtin) != 1 || X509_VERIFY_PARAM_set1_name(p, purpose) != 1 ||
          X509_VERIFY_PARAM_set1_host(p, node_name, 0) != 1) {
        X509_VERIFY_PARAM_free(p);
        error = std::string("cannot set up the peer-name check for ") + purpose;
        return;
      }
      X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
      if (X509_VERIFY_PARAM_add0_table(p) != 1) {  // the table owns p from here
        error = std::string("cannot install the peer-name check for ") + purpose;
        return;
      }
    }
  });
  if (!error.empty()) return fail(error);
  return {};
}

expected<void> check_readable(const std::string& path, const char* what) {
  if (::access(path.c_str(), R_OK) != 0)
    return fail("--cluster-certs: cannot read the " + std::string(what) + " " + path +
                " (make a node's folder with `troupe cluster certs --out DIR --hosts ...`)");
  return {};
}

}  // namespace

expected<void> use_cluster_tls(caf::actor_system_config& cfg, const node_files& files) {
  if (auto ok = check_readable(files.ca, "cluster CA certificate"); !ok) return ok;
  if (auto ok = check_readable(files.cert, "node certificate"); !ok) return ok;
  if (auto ok = check_readable(files.key, "node key"); !ok) return ok;
  struct stat st {};
  if (::stat(files.key.c_str(), &st) == 0 && (st.st_mode & 077) != 0)
    return fail("--cluster-certs: " + files.key + " is readable by other users (mode " +
                std::to_string((st.st_mode >> 6) & 7) + std::to_string((st.st_mode >> 3) & 7) +
                std::to_string(st.st_mode & 7) + "); chmod 600 it");
  if (auto ok = require_node_name(); !ok) return ok;
  cfg.openssl_certificate = files.cert;
  cfg.openssl_key = files.key;
  cfg.openssl_cafile = files.ca;
  cfg.load<caf::openssl::manager>();
  return {};
}

}  // namespace troupe::tls
