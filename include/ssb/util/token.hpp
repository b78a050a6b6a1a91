// Random identifiers: 128 bits from the kernel (getrandom), as 32 lowercase
// hex digits. Used for exactly-once submit tokens (core/submit_token.hpp).
#pragma once

#include <string>

namespace ssb {

// Throws std::runtime_error only if the kernel has no randomness to give
// (resource exhaustion, caught in main()).
std::string random_token();

}  // namespace ssb
