#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "ssb/util/log.hpp"

using namespace ssb;

TEST_CASE("log: json lines carry ts, level, msg (when there is one) and typed fields; text keeps the v1 names") {
  auto j = nlohmann::json::parse(
      log::format_line(log::Format::json, log::Level::info, "",
                       {{"id", "1.1/a\"b", false, "req"}, {"elapsed_ms", "12", true, "dur_ms"}, {"user", "\xff\n"}}));
  CHECK(j["level"] == "info");
  CHECK(j["id"] == "1.1/a\"b");
  CHECK(j["elapsed_ms"] == 12);
  CHECK(j["user"] == "\u00ff\n");
  CHECK(j.contains("ts"));
  CHECK_FALSE(j.contains("msg"));  // a request's line: its fields alone
  auto m = nlohmann::json::parse(log::format_line(log::Format::json, log::Level::warn, "pool: \"x\"\n", {}));
  CHECK(m["msg"] == "pool: \"x\"\n");
  CHECK(m["level"] == "warn");
  auto t = log::format_line(log::Format::text, log::Level::info, "", {{"id", "1.1", false, "req"}, {"op", "query"}});
  CHECK(t.find(" info req=1.1 op=query") != std::string::npos);
}

TEST_CASE("log: levels and formats parse from their config names only") {
  log::Level level = log::Level::info;
  CHECK(log::parse_level("debug", level));
  CHECK(level == log::Level::debug);
  CHECK(log::parse_level("error", level));
  CHECK(level == log::Level::error);
  CHECK_FALSE(log::parse_level("verbose", level));
  CHECK(level == log::Level::error);  // unchanged on a bad name
  log::Format format = log::Format::text;
  CHECK(log::parse_format("json", format));
  CHECK(format == log::Format::json);
  CHECK_FALSE(log::parse_format("JSON ", format));
}
