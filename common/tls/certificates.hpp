// The cluster's certificates, made with OpenSSL's library: a cluster-only CA and the certificates
// it issues for nodes (`troupe cluster certs`, and `troupe up` for its own cluster).
//
// A node certificate carries the subject alternative name `node_name` (below) besides its host's
// name: nodes accept a peer only when its certificate chains to the cluster CA *and* carries that
// name (cluster_tls.hpp), so another certificate the same CA may have issued is not a node.
// Keys are EC P-256, written unencrypted with mode 0600; certificates are PEM.
#pragma once

#include <string>
#include <vector>

#include "common/expected.hpp"

namespace troupe::tls {

// The name every node certificate carries (a DNS subject alternative name).
inline constexpr const char* node_name = "troupe-cluster-node";

// The files of one node's folder, as `--cluster-certs DIR` reads them.
struct node_files {
  std::string ca;    // DIR/ca.pem: the cluster CA's certificate
  std::string cert;  // DIR/node.pem
  std::string key;   // DIR/node.key (0600)
};
[[nodiscard]] node_files node_files_in(const std::string& dir);

struct certificate_request {
  std::string host;        // the certificate's common name; also a SAN (an IP address or a DNS name)
  bool node = true;        // carries node_name (false: a certificate of this CA that is no node's)
  int days = 825;
};

// Makes a CA in `ca_dir` (ca.pem, ca.key) unless one is there already; either way, the CA to use.
[[nodiscard]] expected<void> ensure_ca(const std::string& ca_dir, int days = 3650);

// Issues a certificate signed by the CA in `ca_dir` into `out_dir` (ca.pem, node.pem, node.key),
// creating the folder (0700).
[[nodiscard]] expected<void> issue(const std::string& ca_dir, const certificate_request& req, const std::string& out_dir);

// `troupe cluster certs --out DIR --hosts A,B`: the CA in DIR/ca and one folder per host, DIR/<host>.
[[nodiscard]] expected<void> make_cluster_certs(const std::string& out_dir, const std::vector<std::string>& hosts,
                                                int days = 825);

}  // namespace troupe::tls
