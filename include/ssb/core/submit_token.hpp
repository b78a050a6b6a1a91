// Exactly-once submit: the token that names one submit in Slurm. Each
// submit's script gets `#SBATCH --comment=ssb:<submit.tag>:<token>` right
// after its shebang line, so that when the submit's outcome is lost the job
// can be looked up by its token (core/job_listing.hpp) instead of being
// reported as unknown. Pure: the token is made elsewhere (util/token.hpp).
#pragma once

#include <string>
#include <string_view>

#include "ssb/core/request.hpp"
#include "ssb/util/result.hpp"

namespace ssb::core {

inline constexpr std::size_t kTokenLength = 32;  // 128 bits as lowercase hex

// Exactly 32 lowercase hex digits.
bool valid_token(std::string_view token);

// "ssb:<tag>:<token>": the job comment the bridge sets.
std::string submit_comment(std::string_view tag, std::string_view token);

// Whether `script` can carry the comment: its first line must be a shebang
// (sbatch refuses a script without one, so nothing is lost by refusing it
// here, before anything is sent), and no #SBATCH line of its own may set
// --comment (a later directive overrides an earlier one, so it would
// replace the token and the job could no longer be found).
Status check_script_for_token(const Request& request);

// The script with `#SBATCH --comment=ssb:<tag>:<token>` inserted after its
// first line. Only for a script check_script_for_token accepted.
std::string tag_script(std::string_view script, std::string_view tag, std::string_view token);

}  // namespace ssb::core
