#include "ssb/util/log.hpp"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace ssb::log {

namespace {
std::atomic<int> g_level{static_cast<int>(Level::info)};
std::atomic<int> g_format{static_cast<int>(Format::text)};
std::mutex g_mutex;

const char* name(Level l) {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "?";
}

std::string timestamp() {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

// A JSON string literal. Bytes that are not printable ASCII become \u00XX
// (control bytes) or pass through only as part of valid text the callers
// already made printable; the util layer carries no JSON library.
void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          // Non-ASCII is escaped byte by byte as U+00XX: the line stays valid
          // JSON whatever bytes a remote stderr line held.
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

}  // namespace

void set_level(Level level) { g_level = static_cast<int>(level); }
void set_format(Format format) { g_format = static_cast<int>(format); }

bool parse_level(std::string_view text, Level& out) {
  for (Level l : {Level::debug, Level::info, Level::warn, Level::error}) {
    if (text == name(l)) {
      out = l;
      return true;
    }
  }
  return false;
}

bool parse_format(std::string_view text, Format& out) {
  if (text == "text")
    out = Format::text;
  else if (text == "json")
    out = Format::json;
  else
    return false;
  return true;
}

bool enabled(Level level) { return static_cast<int>(level) >= g_level.load(); }

std::string format_line(Format format, Level level, std::string_view message, std::initializer_list<Field> fields) {
  std::string line;
  if (format == Format::json) {
    line = "{\"ts\":";
    append_json_string(line, timestamp());
    line += ",\"level\":";
    append_json_string(line, name(level));
    // A request's line is its fields alone; "msg":"" would only be noise.
    if (!message.empty()) {
      line += ",\"msg\":";
      append_json_string(line, message);
    }
    for (const auto& f : fields) {
      line += ',';
      append_json_string(line, f.key);
      line += ':';
      if (f.number && !f.value.empty() && f.value.find_first_not_of("-0123456789") == std::string::npos) {
        line += f.value;
      } else {
        append_json_string(line, f.value);
      }
    }
    line += '}';
    return line;
  }
  line = fmt::format("{} {} {}", timestamp(), name(level), message);
  for (const auto& f : fields) {
    if (!message.empty() || &f != fields.begin()) line += ' ';
    line += fmt::format("{}={}", f.text_key.empty() ? f.key : f.text_key, f.value);
  }
  return line;
}

void write(Level level, std::string_view message, std::initializer_list<Field> fields) {
  if (!enabled(level)) return;
  auto line = format_line(static_cast<Format>(g_format.load()), level, message, fields);
  line += '\n';
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

void write(Level level, std::string_view message) { write(level, message, {}); }

}  // namespace ssb::log
