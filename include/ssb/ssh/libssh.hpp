// The libssh functions this program calls, resolved at run time with
// dlopen(3) the first time the SSH side is needed.
//
// Why not link libssh: the CLI's common path is a request the daemon
// answers, which never touches SSH, yet loading libssh drags in libcrypto,
// GSSAPI and Kerberos. Their relocations were about half of the instructions
// of a whole daemon-mode CLI call (callgrind: 3.6 M of 7.6 M; see
// docs/BENCHMARK.md). Only this directory and daemon/worker.cpp call libssh,
// always through libssh().
//
// The types, constants and macros still come from <libssh/libssh.h>; only
// the function addresses are looked up. The library is never unloaded.
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include "ssb/util/result.hpp"

namespace ssb::ssh {

// Every libssh function the program calls. Adding a call elsewhere without
// listing it here fails to compile (the call goes through the table).
// One table, laid out by hand:
// clang-format off
#define SSB_LIBSSH_FUNCTIONS(X)                                                                       \
  X(ssh_version) X(ssh_new) X(ssh_free) X(ssh_options_set) X(ssh_connect) X(ssh_disconnect)          \
  X(ssh_is_connected) X(ssh_get_fd) X(ssh_get_error) X(ssh_set_blocking) X(ssh_send_ignore)          \
  X(ssh_get_server_publickey) X(ssh_session_is_known_server) X(ssh_userauth_publickey)              \
  X(ssh_pki_import_privkey_file) X(ssh_key_free) X(ssh_key_type) X(ssh_key_type_to_char)            \
  X(ssh_get_publickey_hash) X(ssh_get_fingerprint_hash) X(ssh_clean_pubkey_hash)                    \
  X(ssh_string_free_char) X(ssh_channel_new) X(ssh_channel_free) X(ssh_channel_open_session)        \
  X(ssh_channel_request_env) X(ssh_channel_request_exec) X(ssh_channel_write)                       \
  X(ssh_channel_window_size) X(ssh_channel_send_eof) X(ssh_channel_close) X(ssh_channel_is_open)    \
  X(ssh_channel_is_closed) X(ssh_set_channel_callbacks) X(ssh_remove_channel_callbacks)             \
  X(ssh_event_new) X(ssh_event_free) X(ssh_event_dopoll) X(ssh_event_add_session)                   \
  X(ssh_event_remove_session) X(ssh_event_add_fd) X(ssh_event_remove_fd)
// clang-format on

struct LibSsh {
// `name` is declared here, which parentheses would break.
#define SSB_LIBSSH_POINTER(name) decltype(&::name) name = nullptr;  // NOLINT(bugprone-macro-parentheses)
  SSB_LIBSSH_FUNCTIONS(SSB_LIBSSH_POINTER)
#undef SSB_LIBSSH_POINTER
};

// The shared object name the build linked against (libssh.so.4 on Debian).
const char* libssh_soname();

// Loads libssh once per process; later calls return the same table (or the
// same error). Thread-safe. Call before anything else in ssb::ssh.
Result<const LibSsh*> load_libssh();

// The loaded table. Precondition: load_libssh() succeeded (a programming
// error otherwise: every entry point of ssb::ssh calls load_libssh first).
const LibSsh& libssh();

// The loading step on its own, for any shared object name: dlopen, resolve
// every function, check the version. Used by load_libssh and by the tests
// (which load a name that does not exist to see the message).
Result<LibSsh> open_libssh(const char* soname);

}  // namespace ssb::ssh
