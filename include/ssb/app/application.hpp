// The command-line application: parses arguments, loads configuration in
// layers and hands over to one command. main() only wires this up.
#pragma once

#include <istream>
#include <ostream>
#include <string>
#include <vector>

namespace ssb::app {

struct Io {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
  std::vector<std::string> environ;  // "NAME=VALUE" entries of the process environment
};

int run(int argc, char** argv, Io io);

}  // namespace ssb::app
