// The cluster's CA and node certificates (see certificates.hpp), with OpenSSL 3's library.
#include "common/tls/certificates.hpp"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <memory>

namespace troupe::tls {

namespace {

namespace fs = std::filesystem;

template <class T, void (*Free)(T*)>
struct deleter {
  void operator()(T* p) const { Free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, deleter<EVP_PKEY, EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, deleter<X509, X509_free>>;
using bn_ptr = std::unique_ptr<BIGNUM, deleter<BIGNUM, BN_free>>;
void close_file(FILE* f) { std::fclose(f); }
using file_ptr = std::unique_ptr<FILE, deleter<FILE, close_file>>;

// OpenSSL's queued errors, for a message.
std::string ssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no detail from OpenSSL" : out;
}

expected<void> ssl_fail(const std::string& what) { return fail(what + ": " + ssl_errors()); }

bool is_ip(const std::string& host) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// Writes `pem` to `path` through a temporary file created with `mode`.
expected<void> write_file(const std::string& path, const std::string& pem, mode_t mode) {
  const std::string tmp = path + ".tmp";
  std::remove(tmp.c_str());
  const mode_t old = ::umask(0077);
  FILE* f = std::fopen(tmp.c_str(), "wx");
  ::umask(old);
  if (!f) return fail("cannot write " + tmp);
  const bool ok = std::fwrite(pem.data(), 1, pem.size(), f) == pem.size();
  if (std::fclose(f) != 0 || !ok) return fail("cannot write " + tmp);
  if (::chmod(tmp.c_str(), mode) != 0 || std::rename(tmp.c_str(), path.c_str()) != 0)
    return fail("cannot move " + tmp + " to " + path);
  return {};
}

template <class Write>
expected<std::string> to_pem(Write write) {
  std::unique_ptr<BIO, deleter<BIO, BIO_free_all>> bio(BIO_new(BIO_s_mem()));
  if (!bio || write(bio.get()) != 1) return fail("cannot encode PEM: " + ssl_errors());
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, size_t(n));
}

expected<void> write_cert(const std::string& path, X509* x) {
  auto pem = to_pem([x](BIO* b) { return PEM_write_bio_X509(b, x); });
  if (!pem) return pem.err();
  return write_file(path, *pem, 0644);
}

expected<void> write_key(const std::string& path, EVP_PKEY* k) {
  auto pem = to_pem([k](BIO* b) { return PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr); });
  if (!pem) return pem.err();
  return write_file(path, *pem, 0600);
}

expected<x509_ptr> read_cert(const std::string& path) {
  file_ptr f(std::fopen(path.c_str(), "r"));
  if (!f) return fail("cannot read " + path);
  x509_ptr x(PEM_read_X509(f.get(), nullptr, nullptr, nullptr));
  if (!x) return fail(path + " holds no PEM certificate: " + ssl_errors());
  return x;
}

expected<pkey_ptr> read_key(const std::string& path) {
  file_ptr f(std::fopen(path.c_str(), "r"));
  if (!f) return fail("cannot read " + path);
  pkey_ptr k(PEM_read_PrivateKey(f.get(), nullptr, nullptr, nullptr));
  if (!k) return fail(path + " holds no PEM private key: " + ssl_errors());
  return k;
}

// An X.509 v3 certificate for `key`, valid from now for `days`, with a random 127-bit serial.
expected<x509_ptr> new_certificate(EVP_PKEY* key, const std::string& common_name, int days) {
  x509_ptr x(X509_new());
  bn_ptr serial(BN_new());
  if (!x || !serial || X509_set_version(x.get(), 2) != 1 || BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(x.get())) ||
      !X509_gmtime_adj(X509_getm_notBefore(x.get()), -60) ||  // a minute early: clocks of a cluster differ a little
      !X509_time_adj_ex(X509_getm_notAfter(x.get()), days, 0, nullptr) || X509_set_pubkey(x.get(), key) != 1)
    return fail("cannot make a certificate: " + ssl_errors());
  X509_NAME* name = X509_get_subject_name(x.get());
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(common_name.c_str()),
                                 -1, -1, 0) != 1)
    return fail("cannot name the certificate '" + common_name + "': " + ssl_errors());
  return x;
}

expected<void> add_extension(X509* x, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, x, nullptr, nullptr, 0);
  std::unique_ptr<X509_EXTENSION, deleter<X509_EXTENSION, X509_EXTENSION_free>> ext(
      X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(x, ext.get(), -1) != 1)
    return fail("cannot add the extension " + std::string(OBJ_nid2sn(nid)) + " = " + value + ": " + ssl_errors());
  return {};
}

}  // namespace

node_files node_files_in(const std::string& dir) { return {dir + "/ca.pem", dir + "/node.pem", dir + "/node.key"}; }

expected<void> ensure_ca(const std::string& ca_dir, int days) {
  if (fs::exists(ca_dir + "/ca.pem") && fs::exists(ca_dir + "/ca.key")) return {};
  std::error_code ec;
  fs::create_directories(ca_dir, ec);
  if (ec) return fail("cannot create " + ca_dir + ": " + ec.message());
  fs::permissions(ca_dir, fs::perms::owner_all, ec);
  pkey_ptr key(EVP_EC_gen("P-256"));
  if (!key) return ssl_fail("cannot make the CA's key");
  // A random suffix: two clusters' CAs never share a name.
  bn_ptr tag(BN_new());
  if (!tag || BN_rand(tag.get(), 64, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1) return ssl_fail("cannot draw the CA's tag");
  char* hex = BN_bn2hex(tag.get());
  const std::string name = std::string("Troupe cluster CA ") + hex;
  OPENSSL_free(hex);
  auto x = new_certificate(key.get(), name, days);
  if (!x) return x.err();
  X509* c = x->get();
  if (X509_set_issuer_name(c, X509_get_subject_name(c)) != 1) return ssl_fail("cannot make the CA self-signed");
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                            std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"},
                            std::pair{NID_subject_key_identifier, "hash"}})
    if (auto ok = add_extension(c, c, nid, value); !ok) return ok;
  if (X509_sign(c, key.get(), EVP_sha256()) <= 0) return ssl_fail("cannot sign the CA's certificate");
  if (auto ok = write_key(ca_dir + "/ca.key", key.get()); !ok) return ok;
  return write_cert(ca_dir + "/ca.pem", c);
}

expected<void> issue(const std::string& ca_dir, const certificate_request& req, const std::string& out_dir) {
  if (req.host.empty()) return fail("a certificate needs a host name");
  if (req.days < 1 || req.days > 36500) return fail("--days " + std::to_string(req.days) + ": give 1 to 36500");
  auto ca = read_cert(ca_dir + "/ca.pem");
  if (!ca) return ca.err();
  auto ca_key = read_key(ca_dir + "/ca.key");
  if (!ca_key) return ca_key.err();
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return fail("cannot create " + out_dir + ": " + ec.message());
  fs::permissions(out_dir, fs::perms::owner_all, ec);

  pkey_ptr key(EVP_EC_gen("P-256"));
  if (!key) return ssl_fail("cannot make a key for " + req.host);
  auto x = new_certificate(key.get(), req.host, req.days);
  if (!x) return x.err();
  X509* c = x->get();
  if (X509_set_issuer_name(c, X509_get_subject_name(ca->get())) != 1) return ssl_fail("cannot set the issuer");
  std::string san = (is_ip(req.host) ? "IP:" : "DNS:") + req.host;
  if (req.node) san += std::string(",DNS:") + node_name;
  for (auto [nid, value] : {std::pair{NID_basic_constraints, std::string("critical,CA:FALSE")},
                            std::pair{NID_key_usage, std::string("critical,digitalSignature,keyAgreement")},
                            // Nodes are both: a worker dials its router, the router accepts.
                            std::pair{NID_ext_key_usage, std::string("serverAuth,clientAuth")},
                            std::pair{NID_subject_alt_name, san},
                            std::pair{NID_authority_key_identifier, std::string("keyid")}})
    if (auto ok = add_extension(c, ca->get(), nid, value); !ok) return ok;
  if (X509_sign(c, ca_key->get(), EVP_sha256()) <= 0) return ssl_fail("cannot sign the certificate of " + req.host);
  const node_files files = node_files_in(out_dir);
  if (auto ok = write_key(files.key, key.get()); !ok) return ok;
  if (auto ok = write_cert(files.cert, c); !ok) return ok;
  return write_cert(files.ca, ca->get());
}

expected<void> make_cluster_certs(const std::string& out_dir, const std::vector<std::string>& hosts, int days) {
  if (hosts.empty()) return fail("--hosts: give the nodes' host names or addresses (e.g. 10.0.0.1,10.0.0.2)");
  for (const auto& h : hosts)
    if (h.empty() || h == "ca" || h.find('/') != std::string::npos || h.front() == '.')
      return fail("--hosts: '" + h + "' cannot name a node's folder");
  if (auto ok = ensure_ca(out_dir + "/ca"); !ok) return ok;
  for (const auto& h : hosts)
    if (auto ok = issue(out_dir + "/ca", {h, true, days}, out_dir + "/" + h); !ok) return ok;
  return {};
}

}  // namespace troupe::tls
