// The cluster port's transport: mutual TLS through CAF 0.17's OpenSSL module, the default; plain
// BASP only with --insecure-cluster.
//
// CAF's module verifies that a peer's certificate chains to the configured CA but checks no name,
// and without a certificate it falls back to an anonymous cipher that authenticates no one. So a
// node refuses to start without its certificates (unless insecure), and every peer certificate must
// also carry tls::node_name: OpenSSL checks it during the handshake, through the process-wide
// verification defaults for TLS clients and servers ("ssl_client", "ssl_server"), which CAF's
// contexts inherit. A connection that fails either check never reaches BASP, so nothing an
// unauthenticated peer sends is parsed or allocated for by CAF.
#pragma once

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/publish.hpp>
#include <caf/openssl/remote_actor.hpp>
#include <string>

#include "common/cluster_config.hpp"
#include "common/expected.hpp"
#include "common/tls/certificates.hpp"

namespace troupe::tls {

// Checks the node's files (readable; the key not readable by group or others) and sets `cfg` up
// for mutual TLS on the cluster port: CAF's OpenSSL module with the certificate, key and CA, and
// the peer-name check. Call before the actor system is made from `cfg`.
[[nodiscard]] expected<void> use_cluster_tls(caf::actor_system_config& cfg, const node_files& files);

// True when `system` speaks TLS on the cluster port.
[[nodiscard]] inline bool uses_tls(const caf::actor_system& system) { return system.has_openssl_manager(); }

// Publishes `handle` on the cluster port at `at` (port 0: any free one); the bound port.
template <class Handle>
[[nodiscard]] caf::expected<uint16_t> publish_on_cluster(caf::actor_system& system, const Handle& handle,
                                                        const cluster::host_port& at) {
  if (uses_tls(system)) return caf::openssl::publish(handle, at.port, at.host.c_str(), true);
  return system.middleman().publish(handle, at.port, at.host.c_str(), true);
}

// The actor published at `at`'s cluster port.
template <class Handle>
[[nodiscard]] caf::expected<Handle> connect_over_cluster(caf::actor_system& system, const cluster::host_port& at) {
  if (uses_tls(system)) return caf::openssl::remote_actor<Handle>(system, at.host, at.port);
  return system.middleman().remote_actor<Handle>(at.host, at.port);
}

}  // namespace troupe::tls
