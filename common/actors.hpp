// The typed actor interfaces of the cluster's roles: the protocol between router and shard groups,
// read in one place and checked by the compiler. Message types are in cluster_messages.hpp.
#pragma once

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <string>
#include <vector>

#include "common/cluster_messages.hpp"

namespace troupe::cluster {

// Receives the tokens a shard group streams: one message per engine step, with every chunk of that
// step for this receiver.
using token_sink_actor = caf::typed_actor<
    caf::reacts_to<tokens_atom, std::vector<token_chunk>>>;  // the chunks of one step

// What a shard group's leader sends its router besides tokens: its load reports (passed on to the
// registry's subscribers) and its leaving.
using load_sink_actor = caf::typed_actor<
    caf::reacts_to<load_atom, load_report>,     // one group's load, every second
    caf::reacts_to<leave_atom, std::string>>;   // group G's node stops: drain it (from G's leader only)

// A shard group's leader (gpu_actor rank 0): runs the engine's step loop on its own thread.
using gpu_leader_actor = caf::typed_actor<
    caf::reacts_to<generate_atom, request, token_sink_actor>,          // queue a request; its tokens go to the sink
    caf::reacts_to<abort_atom, int64_t>,                                // end a request now and free its KV blocks
    caf::reacts_to<stop_atom>,                                          // drained: quit (normally) once nothing runs (from its router only)
    caf::reacts_to<leave_atom>,                                         // its node stops: ask the router to drain the group (from its own node only)
    caf::replies_to<load_atom>::with<load_report>,                      // the current load
    caf::reacts_to<step_atom>,                                          // internal: run one engine step
    caf::reacts_to<tick_atom>>;                                         // internal: publish the load report

// The response cache (cache_actor/): exact-match lookups before routing, stores after a request ends.
using cache_actor = caf::typed_actor<
    caf::replies_to<lookup_atom, cache_key>::with<cache_lookup>,  // the stored completion, if any
    caf::reacts_to<store_atom, cache_key, cache_entry>,          // remember a finished deterministic request
    caf::replies_to<stats_atom>::with<cache_stats>>;             // counters since start

// Where the ranks of one shard group meet (gpu_actor/rendezvous.hpp): a write-once key/value store
// hosted by the group's leader; ranks publish their Gloo addresses (or the NCCL unique id) here.
using rendezvous_actor = caf::typed_actor<
    caf::replies_to<set_key_atom, std::string, std::string>::with<bool>,  // publish a key's value
    caf::replies_to<get_key_atom, std::string>::with<std::string>>;       // a key's value (error: not there yet)

// Follows the registry (registry_actor's subscribe): the autoscaler, the admin console.
using registry_subscriber_actor = caf::typed_actor<
    caf::reacts_to<registry_atom, registry_event>>;  // a group joined, left, reported its load or changed state

// The autoscaler (autoscaler/): follows the registry and starts, replaces and drains workers
// through a launcher. Registry events are taken from its registry only.
using autoscaler_actor = registry_subscriber_actor::extend<
    caf::reacts_to<tick_atom>>;  // internal: reap, supervise, decide (from itself only)

// The cluster's registry of shard groups, as other roles see it (the router implements it). Groups
// are named by group_info::name; an unknown name is an error naming it. It answers actors of the
// router's own node only (a remote sender gets an error; unsubscribe is ignored), and takes at most
// 64 subscribers.
using registry_actor = caf::typed_actor<
    caf::replies_to<list_atom>::with<std::vector<group_status>>,  // every group now, by name
    // Follow changes (monitored: a subscriber that goes away is dropped); the reply is the list now,
    // and every change after it arrives as a registry_event.
    caf::replies_to<subscribe_atom, registry_subscriber_actor>::with<std::vector<group_status>>,
    caf::reacts_to<unsubscribe_atom, registry_subscriber_actor>,      // stop following
    caf::replies_to<cordon_atom, std::string>::with<group_status>,    // route nothing new to the group
    caf::replies_to<uncordon_atom, std::string>::with<group_status>,  // route to it again (not once draining)
    // Cordon the group, let its in-flight requests finish, then tell it to stop; it leaves the
    // registry when its leader has quit ("left", reason "drained").
    caf::replies_to<drain_atom, std::string>::with<group_status>>;

// The router: the registry of shard groups, routing, and the streams back to the clients.
using router_actor = registry_actor::extend<
    caf::replies_to<register_atom, group_info, gpu_leader_actor>::with<bool>,  // a shard group joins (error: refused, and why)
    caf::reacts_to<load_atom, load_report>,                                    // a group's load report
    caf::reacts_to<tokens_atom, std::vector<token_chunk>>,                     // tokens streamed by a group
    caf::reacts_to<leave_atom, std::string>,                                   // group G's leader leaves: drain it (from that leader only)
    caf::reacts_to<submit_atom, request, cache_key>,                          // route a request from this node's front end (key empty: not cached)
    caf::reacts_to<cancel_atom, int64_t>,                                      // the client is gone or stopped: abort at the group
    caf::reacts_to<deadline_atom, int64_t>,                                    // internal: request R's deadline passed (from the router itself only)
    caf::reacts_to<hold_atom, int64_t>,                                        // internal: request R, held while no group served, waited its hold time (from the router itself only)
    caf::reacts_to<rendezvous_atom, std::string, rendezvous_actor>,            // a group's leader publishes where its ranks meet
    caf::replies_to<rendezvous_atom, std::string>::with<rendezvous_actor>>;    // where group G's ranks meet (error: not yet published)

}  // namespace troupe::cluster
