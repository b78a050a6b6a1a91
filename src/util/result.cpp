#include "ssb/util/result.hpp"

#include <array>
#include <utility>

namespace ssb {

namespace {
constexpr std::array<std::pair<Errc, std::string_view>, 17> kNames{{
    {Errc::usage, "usage"},
    {Errc::config, "config"},
    {Errc::invalid_user, "invalid_user"},
    {Errc::invalid_job_id, "invalid_job_id"},
    {Errc::invalid_env, "invalid_env"},
    {Errc::script_too_large, "script_too_large"},
    {Errc::bad_request, "bad_request"},
    {Errc::transport, "transport"},
    {Errc::timeout, "timeout"},
    {Errc::host_key, "host_key"},
    {Errc::auth, "auth"},
    {Errc::daemon_unavailable, "daemon_unavailable"},
    {Errc::overloaded, "overloaded"},
    {Errc::submit_unknown, "submit_unknown"},
    {Errc::remote_failed, "remote_failed"},
    {Errc::shutting_down, "shutting_down"},
    {Errc::internal, "internal"},
}};
}  // namespace

std::string_view to_string(Errc code) {
  for (const auto& [c, name] : kNames) {
    if (c == code) return name;
  }
  return "internal";
}

bool errc_from_string(std::string_view text, Errc& out) {
  for (const auto& [c, name] : kNames) {
    if (name == text) {
      out = c;
      return true;
    }
  }
  return false;
}

int exit_status_for(Errc code) {
  switch (code) {
    case Errc::usage:
    case Errc::config:
    case Errc::invalid_user:
    case Errc::invalid_job_id:
    case Errc::invalid_env:
    case Errc::script_too_large:
    case Errc::bad_request:
      return 2;
    case Errc::remote_failed:
      return 1;
    default:
      return 255;
  }
}

}  // namespace ssb
