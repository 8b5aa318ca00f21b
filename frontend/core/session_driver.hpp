// The one loop both servers run for a request: wait for the session's news, hand each update to the
// server's writer (which renders it in its protocol), and go on until the request is done.
#pragma once

#include <kj/async.h>
#include <kj/function.h>

#include "frontend/core/completion_session.hpp"

namespace troupe::frontend {

// Writes one update; resolves when it is written (the client's flow control), or rejects to end the
// request with that exception (the RPC server's way to fail a call). Called on the kj thread.
using session_writer = kj::Function<kj::Promise<void>(session_update&)>;

// Runs a started session to its end: after each update the writer has written, the next wait,
// until an update says done (every sample finished, or the request failed). `session` and `write`
// must outlive the promise; dropping the promise stops the loop (the session's destructor then
// cancels an unfinished request at the router).
[[nodiscard]] kj::Promise<void> drive_session(completion_session& session, session_writer& write);

}  // namespace troupe::frontend
