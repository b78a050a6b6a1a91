// Validation of every value that reaches the login host. Runs before any
// connection is made, in the CLI and in the daemon alike. Pure functions.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "ssb/util/printable.hpp"
#include "ssb/util/result.hpp"

namespace ssb::core {

inline constexpr std::size_t kMaxUserLength = 64;
inline constexpr std::size_t kMaxEnvNameLength = 128;

// Accepts account names such as "alice.proj1": ASCII letters, digits, '.',
// '_' and '-', not starting with '-' or '.', at most kMaxUserLength bytes.
Status validate_user(std::string_view user);

// Accepts Slurm job ids as batchspawner passes them: a positive decimal
// number below 2^32 without leading zeros, optionally followed by
// ";CLUSTER" (the form `sbatch --parsable` prints on multi-cluster sites).
Status validate_job_id(std::string_view job_id);

// Accepts POSIX-shell variable names not on the deny list (names that steer
// the dynamic loader, the shell or sudo itself).
Status validate_env_name(std::string_view name);

// Values must not contain NUL bytes (no environment can carry them).
Status validate_env_value(std::string_view name, std::string_view value, bool secret);

// Glob match supporting '*' only (used for env.forward and secret patterns).
bool glob_match(std::string_view pattern, std::string_view text);
bool matches_any(const std::vector<std::string>& patterns, std::string_view name);

// How a value is shown in a message: the one helper (ssb/util/printable.hpp).
using ssb::printable;

}  // namespace ssb::core
