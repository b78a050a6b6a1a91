#include "ssb/config/toml_guard.hpp"

#include <fmt/format.h>

#include <cstdint>

namespace ssb::config {

namespace {

enum class State { normal, comment, basic, literal, ml_basic, ml_literal };

bool at(std::string_view text, std::size_t i, std::string_view what) {
  return text.size() - i >= what.size() && text.substr(i, what.size()) == what;
}

// "U+00E9 ('é')" for a well-formed UTF-8 sequence at I, else the byte.
std::string describe(std::string_view text, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(text[i]);
  int len = b0 >= 0xF0 && b0 <= 0xF4 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC2 && b0 <= 0xDF ? 2 : 0;
  if (b0 >= 0xF5) len = 0;
  if (len == 0 || text.size() - i < static_cast<std::size_t>(len)) return fmt::format("byte 0x{:02X}", b0);
  char32_t cp = b0 & (0xFF >> (len + 1));
  for (int k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(text[i + static_cast<std::size_t>(k)]);
    if ((b & 0xC0) != 0x80) return fmt::format("byte 0x{:02X}", b0);
    cp = (cp << 6) | (b & 0x3F);
  }
  return fmt::format("U+{:04X} ('{}')", static_cast<std::uint32_t>(cp), text.substr(i, static_cast<std::size_t>(len)));
}

// Length of the run of Q characters starting at I.
std::size_t run_of(std::string_view text, std::size_t i, char q) {
  std::size_t n = 0;
  while (i + n < text.size() && text[i + n] == q) ++n;
  return n;
}

}  // namespace

std::optional<TomlHazard> find_toml_hazard(std::string_view text) {
  State state = State::normal;
  int line = 1;
  std::size_t i = at(text, 0, "\xEF\xBB\xBF") ? 3 : 0;  // a UTF-8 byte-order mark is fine
  auto hazard = [&](const char* where) {
    return TomlHazard{line, fmt::format("non-ASCII character {} {}; this build's TOML parser (toml++ 3.3) cannot be "
                                        "trusted with it there. Use ASCII, or a \\uXXXX escape inside a \"...\" string",
                                        describe(text, i), where)};
  };
  // The last character outside strings and comments that was not a space or
  // a tab ('\n' at the start of a line). A quote opens a string only where a
  // key or a value can begin; elsewhere (inside a bare value such as
  // `port = 1"x"`) toml++ reads it as part of that value, and what follows
  // it is not inside a string.
  char last = '\n';
  auto opens_string_here = [&last] {
    return last == '\n' || last == '=' || last == '[' || last == ',' || last == '{' || last == '.';
  };
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      ++line;
      last = '\n';
      // Single-line strings end at a line break (unterminated: the parser reports it).
      if (state == State::comment || state == State::basic || state == State::literal) state = State::normal;
      ++i;
      continue;
    }
    switch (state) {
      case State::normal:
        if (c >= 0x80) return hazard("outside a string or a comment");
        if (c == '#') {
          state = State::comment;
        } else if ((c == '"' || c == '\'') && opens_string_here()) {
          const bool triple = at(text, i, c == '"' ? "\"\"\"" : "'''");
          state = c == '"' ? (triple ? State::ml_basic : State::basic) : (triple ? State::ml_literal : State::literal);
          last = '"';  // a string is a key or a value: what may follow it is decided by the parser
          i += triple ? 3 : 1;
          continue;
        } else if (c != ' ' && c != '\t' && c != '\r') {
          last = static_cast<char>(c);
        }
        ++i;
        break;
      case State::comment: ++i; break;
      case State::basic:
      case State::ml_basic:
        if (state == State::ml_basic && c >= 0x80) return hazard("inside a multi-line \"\"\" string");
        if (c == '\\') {
          // \" and \\ do not end the string; other escapes are ASCII letters.
          i += i + 1 < text.size() && (text[i + 1] == '"' || text[i + 1] == '\\') ? 2 : 1;
          continue;
        }
        if (c == '"') {
          if (state == State::basic) {
            state = State::normal;
            ++i;
            continue;
          }
          const auto n = run_of(text, i, '"');
          if (n >= 3) state = State::normal;  // up to two quotes before the closing three belong to the string
          i += n;
          continue;
        }
        ++i;
        break;
      case State::literal:
        if (c == '\'') state = State::normal;
        ++i;
        break;
      case State::ml_literal:
        if (c == '\'') {
          const auto n = run_of(text, i, '\'');
          if (n >= 3) state = State::normal;
          i += n;
          continue;
        }
        ++i;
        break;
    }
  }
  return std::nullopt;
}

}  // namespace ssb::config
