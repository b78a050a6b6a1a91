// Result<T>: the project's one error path for recoverable failures.
//
// Error policy (see ARCHITECTURE.md): every function that can fail for a
// reason a user or the environment causes returns Result<T>. Exceptions are
// reserved for programming errors and resource exhaustion; they are caught
// once, in main(). Exceptions thrown by third-party libraries (toml++,
// nlohmann_json, Boost) are caught at the component boundary that calls them
// and turned into an Error.
#pragma once

#include <cassert>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace ssb {

// Stable error codes. Their spelling (to_string) is part of the public
// interface: CLI stderr lines, JSON output and the daemon protocol use it.
enum class Errc {
  usage,
  config,
  invalid_user,
  invalid_job_id,
  invalid_env,
  script_too_large,
  bad_request,
  transport,
  timeout,
  host_key,
  auth,
  daemon_unavailable,
  overloaded,
  submit_unknown,
  remote_failed,
  not_found,
  shutting_down,
  internal,
};

// One row of the error-code table (src/util/result.cpp).
struct ErrcInfo {
  Errc code;
  std::string_view name;     // the stable spelling
  int exit_status;           // CLI exit status when no remote status exists
  bool state_unknown;        // a failed query says nothing about the job: keep polling
  std::string_view meaning;  // one line for humans
};

// Every code, in declaration order.
std::span<const ErrcInfo> all_error_codes();

// True for the codes after which a job's state is unknown (the python_shim's
// state_unknown_re matches their failure lines, so batchspawner keeps
// polling instead of declaring the job gone).
bool leaves_state_unknown(Errc code);

std::string_view to_string(Errc code);
// Parses the spelling produced by to_string; false when unknown.
bool errc_from_string(std::string_view text, Errc& out);

// Exit status of the CLI for an error of this code when no remote exit
// status is available: 2 for problems found before any connection (the
// caller's fault), 255 for failures of the bridge or the transport.
int exit_status_for(Errc code);

struct Error {
  Errc code = Errc::internal;
  std::string message;
};

inline Error make_error(Errc code, std::string message) { return Error{code, std::move(message)}; }

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return error_;
  }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace ssb
