#include "ssb/core/submit_token.hpp"

#include <fmt/format.h>

namespace ssb::core {

bool valid_token(std::string_view token) {
  if (token.size() != kTokenLength) return false;
  for (char c : token) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string submit_comment(std::string_view tag, std::string_view token) {
  return fmt::format("ssb:{}:{}", tag, token);
}

Status check_script_for_token(const Request& request) {
  const std::string& script = request.script;
  if (script.rfind("#!", 0) != 0) {
    return make_error(Errc::bad_request,
                      fmt::format("job script for user {} does not start with a \"#!\" line; sbatch needs one, and "
                                  "the bridge adds its submit token (#SBATCH --comment) right after it",
                                  request.user));
  }
  std::size_t line_no = 0;
  for (std::size_t begin = 0; begin < script.size(); ++line_no) {
    auto end = script.find('\n', begin);
    if (end == std::string::npos) end = script.size();
    std::string_view line(script.data() + begin, end - begin);
    if (line.rfind("#SBATCH", 0) == 0 && line.find("--comment") != std::string_view::npos) {
      return make_error(Errc::bad_request,
                        fmt::format("job script for user {} sets its own #SBATCH --comment (line {}); the bridge "
                                    "keeps the job comment for its submit token (exactly-once submit), so remove "
                                    "that line from the spawner's batch_script",
                                    request.user, line_no + 1));
    }
    begin = end + 1;
  }
  return {};
}

std::string tag_script(std::string_view script, std::string_view tag, std::string_view token) {
  auto nl = script.find('\n');
  std::string out(script.substr(0, nl));
  out += fmt::format("\n#SBATCH --comment={}\n", submit_comment(tag, token));
  if (nl != std::string_view::npos) out += script.substr(nl + 1);
  return out;
}

}  // namespace ssb::core
