// router_door (see router_door.hpp).
#include "router/router_door.hpp"

#include <caf/all.hpp>

namespace troupe::router {

using namespace cluster;

router_door::router_door(caf::actor_system& system, router_actor router)
    : router_(std::move(router)), as_(system.spawn([] { return caf::behavior{[](caf::unit_t) {}}; })) {}

router_door::~router_door() { caf::anon_send_exit(as_, caf::exit_reason::user_shutdown); }

void router_door::submit(const request& r, cache_key key) const {
  caf::send_as(as_, router_, submit_atom::value, r, std::move(key));
}

void router_door::cancel(int64_t id) const { caf::send_as(as_, router_, cancel_atom::value, id); }

}  // namespace troupe::router
