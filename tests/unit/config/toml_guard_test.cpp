#include <catch2/catch.hpp>

#include <string_view>

#include <string>

#include "ssb/config/config.hpp"
#include "ssb/config/toml_guard.hpp"

using namespace ssb;
using config::find_toml_hazard;

TEST_CASE("toml_guard: ASCII files and non-ASCII in comments and single-line or literal strings pass") {
  CHECK_FALSE(find_toml_hazard(""));
  CHECK_FALSE(find_toml_hazard("[ssh]\nhost = \"login\"  # José's login node\nport = 22\n"));
  CHECK_FALSE(find_toml_hazard("# café\n[remote]\nwrappers_dir = \"/opt/sl\xc3\xa9rm\"\n"));
  CHECK_FALSE(find_toml_hazard("a = 'caf\xc3\xa9'\nb = '''\nsl\xc3\xa9rm\n'''\n"));
  CHECK_FALSE(find_toml_hazard("a = \"quote \\\" then \xc3\xa9\"\n"));          // \" does not end the string
  CHECK_FALSE(find_toml_hazard("\xEF\xBB\xBF[ssh]\n"));                         // a byte-order mark
  CHECK_FALSE(find_toml_hazard("\"k\xc3\xa9y\" = 1\n"));                        // a quoted key
  CHECK_FALSE(find_toml_hazard("a = \"\"\"x\"\"\"\"\"\nb = 'caf\xc3\xa9'\n"));  // """x""""" ends after all five quotes
}

TEST_CASE("toml_guard: non-ASCII outside strings and comments is refused with its line and code point") {
  auto h = find_toml_hazard("[ssh]\nport = 22 \xc2\xa7\n");
  REQUIRE(h);
  CHECK(h->line == 2);
  CHECK_THAT(h->message, Catch::Contains("U+00A7 ('\xc2\xa7') outside a string or a comment"));
  // The two-byte input of upstream issue 295 (U+032A).
  h = find_toml_hazard("\xcc\xaa");
  REQUIRE(h);
  CHECK(h->line == 1);
  CHECK_THAT(h->message, Catch::Contains("U+032A"));
  // A single-line string ends at the line break; what follows is outside it.
  h = find_toml_hazard("a = \"open\n\xc3\xa9 = 1\n");
  REQUIRE(h);
  CHECK(h->line == 2);
  // Not UTF-8: the byte is named.
  h = find_toml_hazard("a = 1 \xff\n");
  REQUIRE(h);
  CHECK_THAT(h->message, Catch::Contains("byte 0xFF"));
}

TEST_CASE("toml_guard: non-ASCII inside multi-line basic strings is refused (upstream issue 190)") {
  // s = """\<newline>§""" : the parser skips whitespace after the
  // line-ending backslash and asks whether § is whitespace.
  auto h = find_toml_hazard("s = \"\"\"\\\n\xc2\xa7\"\"\"\n");
  REQUIRE(h);
  CHECK(h->line == 2);
  CHECK_THAT(h->message, Catch::Contains("inside a multi-line \"\"\" string"));
}

TEST_CASE("toml_guard: the loader reports the hazard as a config error naming file and line") {
  auto r = config::load_string("[ssh]\nhost = \"login\"\nport = 22 \xc3\xa9\n", "/etc/x.toml");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::config);
  CHECK_THAT(r.error().message, Catch::StartsWith("/etc/x.toml:3: non-ASCII character U+00E9"));
  // Comments in any language still load.
  auto ok = config::load_string("# Zugang für die Jupyter-Instanz\n[ssh]\nhost = \"login\"\n", "/etc/x.toml");
  CHECK(ok);
}

TEST_CASE("toml_guard: a quote inside a bare value opens no string (a fuzzer finding against toml++ 3.3)") {
  // toml++ reads `1"…"` as one bare value and walks into the non-ASCII
  // character outside any string, where 3.3 reaches unreachable code.
  auto h = find_toml_hazard("k = 1\"\xD1\x95\"\n");
  REQUIRE(h);
  CHECK(h->line == 1);
  CHECK_THAT(h->message, Catch::Contains("U+0455") && Catch::Contains("outside a string"));
  using namespace std::string_view_literals;  // the finding's text holds a NUL byte
  CHECK(find_toml_hazard("port = 11xF\x08WO\0Rg\"/opt\xD1\x95\"\n"sv));
  // Where a key or a value can begin, a quote still opens one.
  CHECK_FALSE(
      find_toml_hazard("a = [\"x\", \"\xC3\xA9\"]\nt = { k = \"\xC3\xA9\" }\n\"\xC3\xA9\".b = 'x'\n[\"\xC3\xA9\"]\n"));
}
