// The node's actor-system configuration and HOST:PORT parsing.
#include "common/cluster_config.hpp"

#include <caf/io/middleman.hpp>
#include <charconv>

#include "common/actors.hpp"

namespace troupe::cluster {

node_config::node_config(liveness l, size_t threads) {
  load<caf::io::middleman>();
  add_message_type<request>("troupe.request");
  add_message_type<token_logprob>("troupe.token_logprob");
  add_message_type<token_chunk>("troupe.token_chunk");  // and std::vector<token_chunk>
  add_message_type<group_info>("troupe.group_info");
  add_message_type<load_report>("troupe.load_report");
  add_message_type<group_status>("troupe.group_status");  // and std::vector<group_status>
  add_message_type<registry_event>("troupe.registry_event");
  add_message_type<cache_key>("troupe.cache_key");
  add_message_type<cache_entry>("troupe.cache_entry");
  add_message_type<cache_lookup>("troupe.cache_lookup");
  add_message_type<cache_stats>("troupe.cache_stats");
  add_message_type<gpu_leader_actor>("troupe.gpu_leader_actor");
  add_message_type<cache_actor>("troupe.cache_actor");
  add_message_type<router_actor>("troupe.router_actor");
  add_message_type<token_sink_actor>("troupe.token_sink_actor");
  add_message_type<rendezvous_actor>("troupe.rendezvous_actor");
  add_message_type<registry_actor>("troupe.registry_actor");
  add_message_type<registry_subscriber_actor>("troupe.registry_subscriber_actor");
  set("middleman.heartbeat-interval", caf::timespan{l.heartbeat});
  set("middleman.connection-timeout", caf::timespan{l.connection_timeout});
  set("scheduler.max-threads", threads);
  // CAF's own logger would print to the console; errors reach our log through return values.
  set("logger.console", caf::atom("none"));
}

expected<host_port> parse_host_port(const std::string& text, const std::string& what) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos)
    return fail(what + ": '" + text + "' is not HOST:PORT (e.g. 127.0.0.1:7070)");
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string_view port(text.data() + colon + 1, text.size() - colon - 1);
  unsigned value = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || p != port.data() + port.size() || value > 65535)
    return fail(what + ": '" + std::string(port) + "' in '" + text + "' is not a port number (0-65535)");
  if (host.empty()) return fail(what + ": '" + text + "' has no host (e.g. 127.0.0.1:" + std::string(port) + ")");
  return host_port{std::move(host), uint16_t(value)};
}

}  // namespace troupe::cluster
