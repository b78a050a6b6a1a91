// Minimal thread-safe logger for the daemon: one line per event on stderr,
// "2026-11-21T12:00:00.123Z level message". Never given secret values.
#pragma once

#include <string>
#include <string_view>

namespace ssb::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

void set_level(Level level);
bool parse_level(std::string_view text, Level& out);
bool enabled(Level level);
void write(Level level, std::string_view message);

inline void debug(std::string_view m) { write(Level::debug, m); }
inline void info(std::string_view m) { write(Level::info, m); }
inline void warn(std::string_view m) { write(Level::warn, m); }
inline void error(std::string_view m) { write(Level::error, m); }

}  // namespace ssb::log
