// The one way an input value reaches a message (errors, logs, answers):
// bounded and with control bytes escaped, so that a hostile client cannot
// make the bridge echo a megabyte, a token it pasted, or terminal escapes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ssb {

// At most this many input bytes are shown; SECURITY.md states the figure.
inline constexpr std::size_t kMaxEchoBytes = 64;

// Printable ASCII kept, '\\', '\n', '\t' and every other byte escaped
// (\\xNN); input beyond kMaxEchoBytes is cut and replaced by
// "... (N bytes)", N being the whole value's size.
std::string printable(std::string_view value);

}  // namespace ssb
