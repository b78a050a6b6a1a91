// The JSON shapes of the bridge: --json output, `request` input/output and
// the daemon protocol (docs/PROTOCOL.md). Pure: no I/O.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include "ssb/core/request.hpp"
#include "ssb/core/response.hpp"
#include "ssb/util/result.hpp"

namespace ssb::protocol {

inline constexpr int kVersion = 1;
inline constexpr int kMaxDepth = 8;
// A string id longer than this is refused (responses repeat the id whole).
inline constexpr std::size_t kMaxIdBytes = 128;

// Serialises one JSON value as one line of text. Invalid UTF-8 in strings
// (a wrapper printing raw bytes) is replaced by U+FFFD instead of throwing:
// a response must always be writable.
std::string to_line(const nlohmann::json& value);

// True when `text` is valid UTF-8 (what the JSON protocol can carry as is).
bool valid_utf8(std::string_view text);

// A request as it arrives on the wire: the id is echoed verbatim.
// nlohmann::json's destructor may allocate (it flattens nested values into
// a vector), so clang-tidy sees the implicit noexcept members "may throw":
// only on memory exhaustion, which main() handles.
// NOLINTNEXTLINE(bugprone-exception-escape)
struct WireRequest {
  nlohmann::json id;  // string or number
  core::Request request;
};

// Parses one request line. Rejects: invalid JSON or UTF-8, nesting deeper
// than kMaxDepth, lines over `max_bytes`, a key twice in one object, bytes
// after the object, a string id over kMaxIdBytes, a missing or wrong "v", missing
// "id", unknown ops and fields, wrong types. Field *values* (user, job id,
// env names) are checked later by core::validate, as for the CLI.
// On error, `id_out` holds the id when one could be read, so the error
// response can still be matched.
Result<WireRequest> parse_request(std::string_view line, std::size_t max_bytes, nlohmann::json& id_out);

// Serialises a request (client side of the protocol).
nlohmann::json request_to_json(const nlohmann::json& id, const core::Request& request);

// explain's "job" object: {"state", "exit_code", "signal", "reason",
// "stdout", "expected_start", "source"}, unknown values as null.
nlohmann::json job_to_json(const core::JobExplanation& job);
// The same back (client side); throws nlohmann::json::exception when malformed.
core::JobExplanation job_from_json(const nlohmann::json& object);

// The response object without protocol envelope (the CLI's --json output).
nlohmann::json response_to_json(const core::Response& response);

// The same with "v" and "id" (one daemon response line).
nlohmann::json response_envelope(const nlohmann::json& id, const core::Response& response);

// An error response for a line that could not be parsed into a request.
nlohmann::json error_envelope(const nlohmann::json& id, const Error& error);

// The `status` request and its successful response: {"v","id","ok":true,
// "status":{...}}.
nlohmann::json status_request(const nlohmann::json& id);
nlohmann::json status_envelope(const nlohmann::json& id, const nlohmann::json& status);

// The `metrics` request and its successful response: {"v","id","ok":true,
// "metrics":"<Prometheus text exposition>"}.
nlohmann::json metrics_request(const nlohmann::json& id);
nlohmann::json metrics_envelope(const nlohmann::json& id, const std::string& text);

// The error-code table as JSON: {"codes":[{"code","exit_status",
// "state_unknown","meaning"},...]} (`config --error-codes`).
nlohmann::json error_codes_json();

// Reads a daemon response back into a Response (client side), so that the
// CLI prints the same output whichever path served it.
Result<core::Response> response_from_json(const nlohmann::json& object);

}  // namespace ssb::protocol
