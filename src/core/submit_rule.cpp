#include "ssb/core/submit_rule.hpp"

#include <fmt/format.h>

namespace ssb::core {

Error classify_submit_failure(const Request& request, Error error, bool maybe_started) {
  if (request.op != Op::submit || !maybe_started) return error;
  if (error.code != Errc::transport && error.code != Errc::timeout && error.code != Errc::shutting_down) return error;
  return Error{Errc::submit_unknown,
               fmt::format("submit for user {}: outcome unknown, the job may or may not have been submitted ({}); it "
                           "was not re-sent. Check `squeue -u {}` on the login host before submitting again",
                           request.user, error.message, request.user)};
}

}  // namespace ssb::core
