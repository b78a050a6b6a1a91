// Wiring only: process environment in, exit status out. Everything else
// lives in ssb::app.
#include <csignal>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "ssb/app/application.hpp"

extern char** environ;

int main(int argc, char** argv) {
  // A client that goes away must not kill the bridge mid-write.
  std::signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
  try {
    return ssb::app::run(argc, argv, ssb::app::Io{std::cin, std::cout, std::cerr, std::move(env)});
  } catch (const std::exception& e) {
    std::cerr << "slurm-ssh-bridge: internal: " << e.what() << '\n';
  } catch (...) {
    std::cerr << "slurm-ssh-bridge: internal: unexpected exception\n";
  }
  return 255;
}
