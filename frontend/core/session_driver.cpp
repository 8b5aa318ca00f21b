// The session loop (see session_driver.hpp).
#include "frontend/core/session_driver.hpp"

namespace troupe::frontend {

kj::Promise<void> drive_session(completion_session& session, session_writer& write) {
  return session.ready().then([&session, &write]() -> kj::Promise<void> {
    session_update u = session.poll();
    const bool done = u.done;
    auto written = write(u);
    if (done) return written;
    return written.then([&session, &write]() { return drive_session(session, write); });
  });
}

}  // namespace troupe::frontend
