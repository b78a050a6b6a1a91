// The one rule that keeps submit at-most-once: a submit whose exec request
// may have reached the login host is never re-sent, and a failure after
// that point is reported as "outcome unknown", never as a plain failure
// (which batchspawner would answer by submitting again) and never as
// success. Used by the direct path, the daemon's workers and the daemon
// client alike.
#pragma once

#include "ssb/core/request.hpp"
#include "ssb/util/result.hpp"

namespace ssb::core {

// Turns the failure of a request into what its caller must report. For a
// submit whose command may have started (`maybe_started`) and that failed
// in transport, by time-out or because the daemon stopped, that is
// Errc::submit_unknown with a message telling the admin to look before
// submitting again; anything else is returned unchanged.
Error classify_submit_failure(const Request& request, Error error, bool maybe_started);

}  // namespace ssb::core
