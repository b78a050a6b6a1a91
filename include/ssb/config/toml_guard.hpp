// Keeps input away from a defect of the TOML parser this project builds
// with (Debian 12's toml++ 3.3.0): for some non-ASCII code points (U+00A1 to
// U+0499, U+2C8E to U+3087, among them every accented Latin letter) its
// whitespace test reaches a point marked unreachable, which is undefined
// behaviour (upstream issues 190 and 295; fixed upstream in 2026, not in
// 3.3.0). It asks that question only outside strings and comments, and
// inside multi-line basic ("""...""") strings; so the loader refuses a
// non-ASCII character there before parsing, with the line, instead of
// handing it over.
//
// Pure: no I/O; unit-tested and fuzzed (fuzz_config) with the loader.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ssb::config {

struct TomlHazard {
  int line = 0;         // 1-based
  std::string message;  // what and where, without the file name
};

// The first character of TEXT that must not reach the parser, if any.
std::optional<TomlHazard> find_toml_hazard(std::string_view text);

}  // namespace ssb::config
