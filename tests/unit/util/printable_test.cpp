#include <catch2/catch.hpp>

#include "ssb/util/printable.hpp"

using namespace ssb;

TEST_CASE("printable: control bytes escaped, short values whole") {
  CHECK(printable("a\nb\x01\\") == "a\\nb\\x01\\\\");
  CHECK(printable("\x1b[2J") == "\\x1b[2J");
  CHECK(printable(std::string(kMaxEchoBytes, 'x')) == std::string(kMaxEchoBytes, 'x'));
}

TEST_CASE("printable: at most kMaxEchoBytes of the input, then its size") {
  CHECK(kMaxEchoBytes == 64);  // SECURITY.md states this figure
  CHECK(printable(std::string(65, 'x')) == std::string(64, 'x') + "... (65 bytes)");
  auto big = printable(std::string(1 << 20, 'y'));
  CHECK(big == std::string(64, 'y') + "... (1048576 bytes)");
  // Escaping cannot make it unbounded: 64 input bytes, each at most 4 out.
  CHECK(printable(std::string(1000, '\x01')).size() <= 64 * 4 + 32);
}
