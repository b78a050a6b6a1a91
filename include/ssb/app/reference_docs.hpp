// The man page and the bash completion, rendered from the same CLI
// definition, key table and error-code table the program runs on, so
// neither can drift from `--help` (`config --man-page`,
// `config --bash-completion`; the build writes both for packaging).
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace ssb::app {

// slurm-ssh-bridge(1) in roff (man(7) macros).
std::string render_man_page(const CLI::App& app);

// A bash completion script: subcommands, each one's options, option values
// that are a closed set (--mode) or a key name (--set), files for --config.
std::string render_bash_completion(const CLI::App& app);

}  // namespace ssb::app
