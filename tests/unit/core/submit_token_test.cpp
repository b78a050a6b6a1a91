#include "ssb/core/submit_token.hpp"

#include <catch2/catch.hpp>

using namespace ssb;
using namespace ssb::core;

TEST_CASE("submit token: exactly 32 lowercase hex digits") {
  CHECK(valid_token("0123456789abcdef0123456789abcdef"));
  CHECK_FALSE(valid_token(""));
  CHECK_FALSE(valid_token("0123456789ABCDEF0123456789abcdef"));
  CHECK_FALSE(valid_token("0123456789abcdef0123456789abcde"));
  CHECK_FALSE(valid_token("0123456789abcdef0123456789abcdefa"));
  CHECK_FALSE(valid_token("0123456789abcdef0123456789abcdeg"));
}

TEST_CASE("submit token: the comment line goes right after the shebang") {
  CHECK(tag_script("#!/bin/bash\necho hi\n", "hub", "t") == "#!/bin/bash\n#SBATCH --comment=ssb:hub:t\necho hi\n");
  CHECK(tag_script("#!/bin/sh", "hub", "t") == "#!/bin/sh\n#SBATCH --comment=ssb:hub:t\n");
  CHECK(submit_comment("jupyterhub", "ab") == "ssb:jupyterhub:ab");
}

TEST_CASE("submit token: a script without a shebang or with its own --comment is refused, naming the line") {
  Request r;
  r.op = Op::submit;
  r.user = "alice.proj1";
  r.script = "echo hi\n";
  auto st = check_script_for_token(r);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == Errc::bad_request);
  CHECK(st.error().message.find("alice.proj1 does not start with a \"#!\" line") != std::string::npos);
  r.script = "#!/bin/bash\n#SBATCH -t 5\n#SBATCH --comment=mine\necho\n";
  st = check_script_for_token(r);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message.find("sets its own #SBATCH --comment (line 3)") != std::string::npos);
  r.script = "#!/bin/bash\n#SBATCH -t 5\necho --comment\n";
  CHECK(check_script_for_token(r).ok());
}
