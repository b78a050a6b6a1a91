#include <catch2/catch.hpp>

#include "ssb/core/submit_rule.hpp"

using namespace ssb;
using namespace ssb::core;

TEST_CASE("submit rule: a submit that may have started and failed in transit is submit_unknown") {
  Request submit{Op::submit, "alice.proj1", "", "S", {}};
  for (auto code : {Errc::transport, Errc::timeout, Errc::shutting_down}) {
    INFO(to_string(code));
    auto e = classify_submit_failure(submit, Error{code, "connection reset"}, /*maybe_started=*/true);
    CHECK(e.code == Errc::submit_unknown);
    CHECK(e.message ==
          "submit for user alice.proj1: outcome unknown, the job may or may not have been submitted (connection "
          "reset); it was not re-sent. Check `squeue -u alice.proj1` on the login host before submitting again");
  }
}

TEST_CASE("submit rule: anything else keeps its error") {
  Request submit{Op::submit, "alice.proj1", "", "S", {}};
  Request query{Op::query, "alice.proj1", "42", "", {}};
  // Not sent yet: a plain failure, safe to submit again.
  CHECK(classify_submit_failure(submit, Error{Errc::transport, "x"}, false).code == Errc::transport);
  // The login host answered: its verdict stands.
  CHECK(classify_submit_failure(submit, Error{Errc::auth, "x"}, true).code == Errc::auth);
  CHECK(classify_submit_failure(submit, Error{Errc::remote_failed, "x"}, true).code == Errc::remote_failed);
  // Query and cancel may be retried: never "unknown".
  CHECK(classify_submit_failure(query, Error{Errc::transport, "x"}, true).code == Errc::transport);
}
