#include <catch2/catch.hpp>

#include "ssb/protocol/json.hpp"

using namespace ssb;
using namespace ssb::protocol;
using nlohmann::json;

namespace {
Error parse_error(const std::string& line, std::size_t max = 1 << 20) {
  json id;
  auto r = parse_request(line, max, id);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::bad_request);
  return r.error();
}
}  // namespace

TEST_CASE("protocol: valid requests") {
  json id;
  auto q = parse_request(R"({"v":1,"id":"a1","op":"query","user":"alice","job_id":"42"})", 1 << 20, id);
  REQUIRE(q.ok());
  CHECK(q->id == "a1");
  CHECK(q->request.op == core::Op::query);
  CHECK(q->request.job_id == "42");
  auto s = parse_request(R"({"v":1,"id":7,"op":"submit","user":"alice","script":"x","env":{"A":"b"}})", 1 << 20, id);
  REQUIRE(s.ok());
  CHECK(s->id == 7);
  CHECK(s->request.env.at("A") == "b");
  auto st = parse_request(R"({"v":1,"id":1,"op":"status"})", 1 << 20, id);
  REQUIRE(st.ok());
}

TEST_CASE("protocol: malformed requests are bad_request with a reason") {
  CHECK(parse_error("").message.find("not valid JSON") != std::string::npos);
  CHECK(parse_error("{\"v\":1,").message.find("not valid JSON") != std::string::npos);
  CHECK(parse_error("[1]").message == "request must be a JSON object");
  CHECK(parse_error(R"({"id":1,"op":"status"})").message == "request must carry \"v\": 1 (protocol version)");
  CHECK(parse_error(R"({"v":2,"id":1,"op":"status"})").message == "request must carry \"v\": 1 (protocol version)");
  CHECK(parse_error(R"({"v":1,"op":"status"})").message == "request must carry an \"id\" (string or integer)");
  CHECK(parse_error(R"({"v":1,"id":1,"op":"rm"})").message ==
        "unknown op \"rm\"; expected submit, query, cancel, explain, jobs, status or metrics");
  CHECK(parse_error(R"({"v":1,"id":1,"op":"status","x":1})").message == "request has unknown field \"x\"");
  CHECK(parse_error(R"({"v":1,"id":1,"op":"query","user":"a"})").message == "op \"query\" needs the field \"job_id\"");
  CHECK(parse_error(R"({"v":1,"id":1,"op":"query","user":"a","job_id":42})").message ==
        "request field \"job_id\" must be a string");
  CHECK(parse_error(R"({"v":1,"id":1,"op":"submit","user":"a","script":"x","env":{"A":1}})").message ==
        "request field \"env\" must be an object of strings");
  CHECK(parse_error(R"({"v":1,"id":1,"op":"status","user":"a"})").message ==
        "op \"status\" does not take the field \"user\"");
  CHECK(parse_error("{\"v\":1,\"id\":1,\"op\":\"query\",\"user\":\"\xff\",\"job_id\":\"1\"}")
            .message.find("not valid JSON") != std::string::npos);
  std::string deep = R"({"v":1,"id":1,"op":"status","env":)" + std::string(100, '[') + std::string(100, ']') + "}";
  CHECK(parse_error(deep).message == "request nests deeper than 8 levels");
  CHECK(parse_error(std::string(2000, ' '), 1000).message ==
        "request line is over the limit of 1000 bytes (daemon.max_line_bytes)");
}

TEST_CASE("protocol: a key twice in one object is refused, at any depth, naming the key") {
  // nlohmann keeps the last: this line would run as alice while it reads as bob.
  CHECK(parse_error(R"({"v":1,"id":1,"op":"query","user":"bob.proj1","user":"alice.proj1","job_id":"1"})").message ==
        "request has the key \"user\" twice in one object; send each key once");
  CHECK(parse_error(R"({"v":1,"id":1,"op":"submit","user":"a","script":"x","env":{"A":"1","A":"2"}})").message ==
        "request has the key \"A\" twice in one object; send each key once");
  CHECK(parse_error(R"({"v":1,"v":1,"id":1,"op":"status"})").message.find("\"v\" twice") != std::string::npos);
  // The same key in different objects is not a duplicate.
  json id;
  CHECK(parse_request(R"({"v":1,"id":1,"op":"submit","user":"a","script":"x","env":{"user":"1"}})", 1 << 20, id));
  // A duplicate's name is shown bounded like every echoed input.
  std::string big(5000, 'k');
  auto msg = parse_error("{\"" + big + "\":1,\"" + big + "\":2}").message;
  CHECK(msg.find("twice") != std::string::npos);
  CHECK(msg.size() < 200);
}

TEST_CASE("protocol: bytes after the object are refused as such") {
  CHECK(parse_error(R"({"v":1,"id":1,"op":"status"} xyz)").message ==
        "request has bytes after its JSON object (from byte 30); send one object per line");
  CHECK(parse_error(R"({"v":1,"id":1,"op":"status"}{"v":1,"id":2,"op":"status"})").message.find("bytes after") !=
        std::string::npos);
  // Trailing whitespace is not "bytes after".
  json id;
  CHECK(parse_request("{\"v\":1,\"id\":1,\"op\":\"status\"}  \t\r", 1 << 20, id));
  // A broken object is still a parse error, not "bytes after".
  CHECK(parse_error(R"({"v":1,"id":1,"op":"status")").message.find("not valid JSON") != std::string::npos);
}

TEST_CASE("protocol: nothing the client sent comes back beyond the echo cap") {
  const std::string user(1 << 20, 'a');
  json id;
  auto r = parse_request(R"({"v":1,"id":1,"op":"query","user":")" + user + R"(","job_id":"1"})", 2 << 20, id);
  REQUIRE(r.ok());
  config::Config config;
  auto st = core::validate(r->request, config);
  REQUIRE_FALSE(st.ok());
  auto line = to_line(response_envelope(id, core::from_error(r->request, st.error())));
  CHECK(line.size() < 600);
  CHECK(line.find("(1048576 bytes)") != std::string::npos);
  // A long string id is refused rather than repeated.
  json id2;
  auto msg = parse_request(R"({"v":1,"id":")" + std::string(129, 'i') + R"(","op":"status"})", 1 << 20, id2);
  REQUIRE_FALSE(msg.ok());
  CHECK(msg.error().message == "request \"id\" is 129 bytes, more than 128");
  CHECK(id2.is_null());
}

TEST_CASE("protocol: the id survives a bad request") {
  json id;
  auto r = parse_request(R"({"v":1,"id":"keep","op":"nope"})", 1 << 20, id);
  REQUIRE_FALSE(r.ok());
  CHECK(id == "keep");
  auto env = error_envelope(id, r.error());
  CHECK(env["id"] == "keep");
  CHECK(env["ok"] == false);
  CHECK(env["error"]["code"] == "bad_request");
}

TEST_CASE("protocol: responses round-trip") {
  core::Response r;
  r.op = core::Op::query;
  r.user = "alice";
  r.job_id = "42";
  r.state = "RUNNING";
  r.host = "node1";
  r.remote = core::RemoteOutcome{0, "RUNNING node1\n", ""};
  r.elapsed_ms = 12;
  r.path = "daemon";
  auto j = response_envelope("x", r);
  CHECK(j["v"] == 1);
  CHECK(j["id"] == "x");
  auto back = response_from_json(j);
  REQUIRE(back.ok());
  CHECK(back->state == r.state);
  CHECK(back->remote->out == r.remote->out);
  CHECK(back->ok());

  core::Response e;
  e.op = core::Op::submit;
  e.error = Error{Errc::submit_unknown, "m"};
  auto eb = response_from_json(response_envelope(1, e));
  REQUIRE(eb.ok());
  REQUIRE(eb->error);
  CHECK(eb->error->code == Errc::submit_unknown);
  CHECK_FALSE(eb->remote.has_value());

  auto rq = request_to_json("i", core::Request{core::Op::submit, "u", "", "s", {{"A", "b"}}});
  json id;
  auto parsed = parse_request(rq.dump(), 1 << 20, id);
  REQUIRE(parsed.ok());
  CHECK(parsed->request.script == "s");
}

TEST_CASE("protocol: the slurm details of a coalesced answer: the contract's shape, nulls, round trip") {
  core::Response r;
  r.op = core::Op::query;
  r.user = "alice";
  r.job_id = "42";
  r.state = "PENDING";
  r.remote = core::RemoteOutcome{0, "PENDING n/a\n", ""};
  CHECK_FALSE(response_to_json(r).contains("slurm"));  // per_user: absent
  r.slurm = core::SlurmDetails{"PENDING", std::nullopt, std::string("Resources"), std::string("2026-12-02T10:32:00")};
  auto j = response_to_json(r);
  REQUIRE(j.contains("slurm"));
  CHECK(j["slurm"] == json::parse(R"({"state":"PENDING","node":null,"reason":"Resources",)"
                                  R"("expected_start":"2026-12-02T10:32:00"})"));
  auto back = response_from_json(response_envelope("q", r));
  REQUIRE(back.ok());
  REQUIRE(back->slurm);
  CHECK(back->slurm->state == "PENDING");
  CHECK_FALSE(back->slurm->node);
  CHECK(back->slurm->reason == std::optional<std::string>("Resources"));
  CHECK(back->slurm->expected_start == std::optional<std::string>("2026-12-02T10:32:00"));
  r.slurm = core::SlurmDetails{"RUNNING", std::string("node1"), std::nullopt, std::nullopt};
  j = response_to_json(r);
  CHECK(j["slurm"]["node"] == "node1");
  CHECK(j["slurm"]["reason"].is_null());
  CHECK(j["slurm"]["expected_start"].is_null());
}

TEST_CASE("protocol: parse errors never echo request bytes (tokens, invalid UTF-8)") {
  json id;
  auto truncated =
      parse_request(R"({"v":1,"id":1,"op":"submit","user":"a","script":"x","env":{"T":"ssbsecret-tok)", 1 << 20, id);
  REQUIRE_FALSE(truncated.ok());
  CHECK(truncated.error().message.find("ssbsecret") == std::string::npos);
  CHECK(truncated.error().message.rfind("request is not valid JSON (or not UTF-8): parse error at byte ", 0) == 0);

  auto bad_utf8 =
      parse_request("{\"v\":1,\"id\":1,\"op\":\"query\",\"user\":\"a\xff\xfe\",\"job_id\":\"1\"}", 1 << 20, id);
  REQUIRE_FALSE(bad_utf8.ok());
  CHECK(valid_utf8(bad_utf8.error().message));
  // The error response can always be written.
  CHECK_NOTHROW(to_line(error_envelope(id, bad_utf8.error())));

  // Names quoted back are escaped, never cut mid-character.
  auto field =
      parse_request("{\"v\":1,\"id\":1,\"op\":\"status\",\"" + std::string(62, 'x') + "\xc3\xa9\":1}", 1 << 20, id);
  REQUIRE_FALSE(field.ok());
  CHECK(valid_utf8(field.error().message));
  CHECK(field.error().message.find("\\xc3\\xa9") != std::string::npos);
}

TEST_CASE("protocol: valid_utf8 and to_line") {
  CHECK(valid_utf8(""));
  CHECK(valid_utf8("plain"));
  CHECK(valid_utf8("\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  CHECK_FALSE(valid_utf8("\xff"));
  CHECK_FALSE(valid_utf8("\xc3"));              // truncated
  CHECK_FALSE(valid_utf8("\xc0\xaf"));          // overlong
  CHECK_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate
  CHECK_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // beyond U+10FFFF
  CHECK(to_line(json{{"out",
                      "a\xff"
                      "b"}}) ==
        "{\"out\":\"a\xef\xbf\xbd"
        "b\"}");
}

TEST_CASE("protocol: a submit may carry the hub's HOME; query, cancel and status may not") {
  json id;
  auto s = parse_request(R"({"v":1,"id":7,"op":"submit","user":"alice","script":"x","hub_home":"/home/alice"})",
                         1 << 20, id);
  REQUIRE(s.ok());
  CHECK(s->request.hub_home == "/home/alice");
  auto line = to_line(request_to_json(7, s->request));
  CHECK(line.find(R"("hub_home":"/home/alice")") != std::string::npos);
  core::Request plain{core::Op::submit, "alice", "", "x", {}};
  CHECK(to_line(request_to_json(8, plain)).find("hub_home") == std::string::npos);
  CHECK(parse_error(R"({"v":1,"id":1,"op":"query","user":"a","job_id":"1","hub_home":"/h"})").message ==
        "op \"query\" does not take the field \"hub_home\"");
  CHECK(parse_error(R"({"v":1,"id":1,"op":"status","hub_home":"/h"})").message ==
        "op \"status\" does not take the field \"hub_home\"");
  CHECK(parse_error(R"({"v":1,"id":1,"op":"submit","user":"a","script":"x","hub_home":1})").message ==
        "request field \"hub_home\" must be a string");
}

TEST_CASE("protocol: the status request and its envelope") {
  CHECK(to_line(status_request("s")) == R"({"id":"s","op":"status","v":1})");
  json id;
  auto parsed = parse_request(to_line(status_request(3)), 1 << 20, id);
  REQUIRE(parsed.ok());
  CHECK(parsed->request.op == core::Op::status);
  auto env = status_envelope("s", json{{"queue_depth", 0}});
  CHECK(to_line(env) == R"({"id":"s","ok":true,"status":{"queue_depth":0},"v":1})");
  CHECK_FALSE(env.contains("error"));
}

TEST_CASE("protocol: explain takes user and job_id; its job object round-trips") {
  json id;
  auto e = parse_request(R"({"v":1,"id":3,"op":"explain","user":"alice","job_id":"42"})", 1 << 20, id);
  REQUIRE(e.ok());
  CHECK(e->request.op == core::Op::explain);
  CHECK(parse_error(R"({"v":1,"id":3,"op":"explain","user":"alice"})").message ==
        "op \"explain\" needs the field \"job_id\"");
  CHECK(parse_error(R"({"v":1,"id":3,"op":"explain","user":"a","job_id":"1","script":"x"})").message ==
        "op \"explain\" does not take the field \"script\"");

  core::Response r;
  r.op = core::Op::explain;
  r.user = "alice";
  r.job_id = "42";
  r.job = core::JobExplanation{"FAILED",     1,          std::nullopt, "NonZeroExitCode", "/home/a/x.log",
                               std::nullopt, "scontrol", "alice"};
  r.audit = "never on the wire";
  auto j = response_envelope(5, r);
  CHECK(j["job"] == json::parse(R"({"state":"FAILED","exit_code":1,"signal":null,"reason":"NonZeroExitCode",
                                    "stdout":"/home/a/x.log","expected_start":null,"source":"scontrol"})"));
  CHECK(j.dump().find("never on the wire") == std::string::npos);
  CHECK(j.dump().find("owner") == std::string::npos);
  auto back = response_from_json(j);
  REQUIRE(back.ok());
  REQUIRE(back->job);
  CHECK(back->job->exit_code == 1);
  CHECK(back->job->stdout_path == std::optional<std::string>("/home/a/x.log"));
  CHECK_FALSE(back->job->signal);
  CHECK(back->job->source == "scontrol");
  CHECK(back->op == core::Op::explain);
}
