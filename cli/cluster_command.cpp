// `troupe cluster certs --out DIR --hosts A,B [--days N]`: the cluster's CA (DIR/ca, kept by the
// operator) and one folder per node (DIR/<host>: ca.pem, node.pem, node.key) to copy to that host
// and name with `troupe node --cluster-certs DIR/<host>`. Run again with more hosts, it reuses the CA.
#include <cstdio>
#include <memory>

#include "cli/commands.hpp"
#include "common/tls/certificates.hpp"

namespace troupe::cli {

command_runner add_cluster_command(CLI::App& app) {
  struct options {
    std::string out;
    std::vector<std::string> hosts;
    int days = 825;
  };
  auto o = std::make_shared<options>();
  CLI::App* c = app.add_subcommand("cluster", "cluster administration: certs");
  c->require_subcommand(1);
  CLI::App* certs = c->add_subcommand("certs", "make the cluster CA and a certificate folder per node (mutual TLS)");
  certs->add_option("--out", o->out, "folder for the CA (OUT/ca) and the nodes' folders (OUT/HOST)")->required();
  certs->add_option("--hosts", o->hosts, "the nodes' host names or addresses (comma-separated)")
      ->required()
      ->delimiter(',');
  certs->add_option("--days", o->days, "days a node certificate is valid")->capture_default_str();
  return [o]() {
    if (auto ok = tls::make_cluster_certs(o->out, o->hosts, o->days); !ok) {
      std::fprintf(stderr, "error: %s\n", ok.message().c_str());
      return 1;
    }
    std::printf("cluster CA in %s/ca (keep ca.key private); node folders:", o->out.c_str());
    for (const auto& h : o->hosts) std::printf(" %s/%s", o->out.c_str(), h.c_str());
    std::printf("\nstart each node with --cluster-certs FOLDER\n");
    return 0;
  };
}

}  // namespace troupe::cli
