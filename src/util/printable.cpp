#include "ssb/util/printable.hpp"

#include <fmt/format.h>

namespace ssb {

std::string printable(std::string_view value) {
  std::string out;
  const auto shown = value.substr(0, kMaxEchoBytes);
  for (char ch : shown) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  // The size says how much was cut without showing any of it.
  if (value.size() > shown.size()) out += fmt::format("... ({} bytes)", value.size());
  return out;
}

}  // namespace ssb
