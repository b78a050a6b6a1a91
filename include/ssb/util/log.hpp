// Minimal thread-safe logger for the daemon: one line per event on stderr.
// Text: "2026-11-21T12:00:00.123Z level message key=value ...". JSON
// (log.format = "json"): one object per line, {"ts","level","msg",fields...}
// ("msg" left out when the message is empty, as on a request's line), so an
// admin's tools can search by field. Never given secret values.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace ssb::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };
enum class Format { text, json };

void set_level(Level level);
bool parse_level(std::string_view text, Level& out);
bool enabled(Level level);
void set_format(Format format);
bool parse_format(std::string_view text, Format& out);

// One field of an event. `text_key` is its name in text lines when it
// differs from the JSON one: the text request line keeps the names it has
// had since v1 (req=, job=, conn=, dur_ms=), which admins' greps rely on.
struct Field {
  std::string_view key;
  std::string value;
  bool number = false;  // JSON: written unquoted (value holds digits only)
  std::string_view text_key = {};
};

void write(Level level, std::string_view message);
// `message` may be empty (the line is then only the fields).
void write(Level level, std::string_view message, std::initializer_list<Field> fields);

// The line write() would emit (without the newline), for the unit tests.
std::string format_line(Format format, Level level, std::string_view message, std::initializer_list<Field> fields);

inline void debug(std::string_view m) { write(Level::debug, m); }
inline void info(std::string_view m) { write(Level::info, m); }
inline void warn(std::string_view m) { write(Level::warn, m); }
inline void error(std::string_view m) { write(Level::error, m); }

}  // namespace ssb::log
