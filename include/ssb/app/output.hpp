// Prints a Response as the contract says (docs/CONTRACTS.md) and returns
// the process exit status.
#pragma once

#include <ostream>

#include "ssb/core/response.hpp"

namespace ssb::app {

// Text mode: the wrapper's stdout/stderr verbatim and its exit status; a
// bridge failure as one stderr line "slurm-ssh-bridge: CODE: MESSAGE".
// JSON mode: one object on stdout.
int print_response(const core::Response& response, bool json, std::ostream& out, std::ostream& err);

// One failure line, used for errors met before a request exists.
int print_failure(const Error& error, bool json, std::ostream& out, std::ostream& err);

std::string failure_line(const Error& error);

}  // namespace ssb::app
