#include "ssb/protocol/json.hpp"

#include <fmt/format.h>

#include <optional>
#include <set>
#include <vector>

#include "ssb/core/validate.hpp"

namespace ssb::protocol {

using nlohmann::json;

namespace {

Error bad(std::string message) { return Error{Errc::bad_request, std::move(message)}; }

Result<std::string> string_field(const json& obj, const char* name, bool required) {
  auto it = obj.find(name);
  if (it == obj.end()) {
    if (required) return bad(fmt::format("request has no \"{}\" field", name));
    return std::string();
  }
  if (!it->is_string()) return bad(fmt::format("request field \"{}\" must be a string", name));
  return it->get<std::string>();
}

}  // namespace

std::string to_line(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

bool valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > text.size()) return false;
    std::uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (std::size_t k = 1; k < n; ++k) {
      auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // overlong forms, surrogates, beyond U+10FFFF
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n;
  }
  return true;
}

namespace {

// Which optional fields each op needs, takes or refuses: one row per op.
enum class Field { required, allowed, refused };
struct OpFields {
  core::Op op;
  Field user, job_id, script, env, hub_home, token;
};
constexpr auto R = Field::required;
constexpr auto A = Field::allowed;
constexpr auto X = Field::refused;
constexpr OpFields kOpFields[] = {
    // op               user job_id script env hub_home token
    {core::Op::submit, R, X, R, A, A, A},  {core::Op::query, R, R, X, X, X, X},  {core::Op::cancel, R, R, X, X, X, X},
    {core::Op::explain, R, R, X, X, X, X}, {core::Op::status, X, X, X, X, X, X}, {core::Op::jobs, X, X, X, X, X, X},
    {core::Op::metrics, X, X, X, X, X, X},
};

Status check_fields_for_op(const json& obj, core::Op op) {
  const OpFields* row = nullptr;
  for (const auto& r : kOpFields) {
    if (r.op == op) row = &r;
  }
  if (!row) return make_error(Errc::internal, "no field rules for this op");
  const std::pair<const char*, Field> fields[] = {{"user", row->user},         {"job_id", row->job_id},
                                                  {"script", row->script},     {"env", row->env},
                                                  {"hub_home", row->hub_home}, {"token", row->token}};
  // Required fields first, so that a request missing one is told so before
  // anything else (the messages clients have seen since v1).
  for (const auto& [name, rule] : fields) {
    if (rule == Field::required && !obj.contains(name)) {
      return make_error(Errc::bad_request, fmt::format("op \"{}\" needs the field \"{}\"", core::to_string(op), name));
    }
  }
  for (const auto& [name, rule] : fields) {
    if (rule == Field::refused && obj.contains(name)) {
      return make_error(Errc::bad_request,
                        fmt::format("op \"{}\" does not take the field \"{}\"", core::to_string(op), name));
    }
  }
  return {};
}

}  // namespace

Result<WireRequest> parse_request(std::string_view line, std::size_t max_bytes, json& id_out) {
  id_out = nullptr;
  if (line.size() > max_bytes) {
    // Not its size: `request` stops reading stdin just past the limit.
    return bad(fmt::format("request line is over the limit of {} bytes (daemon.max_line_bytes)", max_bytes));
  }
  json obj;
  // The parser callback bounds nesting before anything deep is built,
  // refuses a key that repeats within its object (nlohmann keeps the last,
  // so "user":"bob","user":"alice" would run as alice while a reader of the
  // line sees bob), and notes where the top-level value ended, so bytes
  // after it are told apart from a broken value.
  int depth_exceeded = 0;
  std::string duplicate;
  bool value_complete = false;
  std::vector<std::set<std::string>> open_objects;
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    using E = json::parse_event_t;
    if ((event == E::object_start || event == E::array_start) && depth >= kMaxDepth) depth_exceeded = 1;
    if (event == E::object_start) open_objects.emplace_back();
    if (event == E::key && !open_objects.empty() && duplicate.empty() &&
        !open_objects.back().insert(parsed.get<std::string>()).second) {
      duplicate = parsed.get<std::string>();
    }
    if (event == E::object_end && !open_objects.empty()) open_objects.pop_back();
    if ((event == E::object_end || event == E::array_end || event == E::value) && depth == 0) value_complete = true;
    return depth_exceeded == 0 && duplicate.empty();
  };
  auto refused = [&]() -> std::optional<Error> {
    if (depth_exceeded) return bad(fmt::format("request nests deeper than {} levels", kMaxDepth));
    if (!duplicate.empty()) {
      return bad(fmt::format("request has the key \"{}\" twice in one object; send each key once",
                             core::printable(duplicate)));
    }
    return std::nullopt;
  };
  try {
    obj = json::parse(line.begin(), line.end(), on_event, /*allow_exceptions=*/true);
  } catch (const json::parse_error& e) {
    if (auto err = refused()) return *err;
    if (value_complete) {
      return bad(
          fmt::format("request has bytes after its JSON object (from byte {}); send one object per line", e.byte));
    }
    // Never e.what(): it quotes the bytes it read, which may be a token or
    // invalid UTF-8.
    return bad(fmt::format("request is not valid JSON (or not UTF-8): parse error at byte {}", e.byte));
  } catch (const json::exception&) {
    if (auto err = refused()) return *err;
    return bad("request is not valid JSON");
  }
  if (auto err = refused()) return *err;
  if (!obj.is_object()) return bad("request must be a JSON object");
  if (auto it = obj.find("id"); it != obj.end() && (it->is_string() || it->is_number_integer())) {
    // The id is the one input a response repeats whole; so it is short.
    if (it->is_string() && it->get_ref<const std::string&>().size() > kMaxIdBytes) {
      return bad(fmt::format("request \"id\" is {} bytes, more than {}", it->get_ref<const std::string&>().size(),
                             kMaxIdBytes));
    }
    id_out = *it;
  }

  static const std::set<std::string> known{"v", "id", "op", "user", "job_id", "script", "env", "hub_home", "token"};
  for (const auto& [key, value] : obj.items()) {
    if (!known.count(key)) return bad(fmt::format("request has unknown field \"{}\"", core::printable(key)));
  }
  auto v = obj.find("v");
  if (v == obj.end() || !v->is_number_integer() || v->get<std::int64_t>() != kVersion) {
    return bad(fmt::format("request must carry \"v\": {} (protocol version)", kVersion));
  }
  if (id_out.is_null()) return bad("request must carry an \"id\" (string or integer)");

  WireRequest wr;
  wr.id = id_out;
  auto op = string_field(obj, "op", true);
  if (!op) return op.error();
  if (!core::op_from_string(*op, wr.request.op)) {
    return bad(fmt::format("unknown op \"{}\"; expected submit, query, cancel, explain, jobs, status or metrics",
                           core::printable(*op)));
  }
  auto user = string_field(obj, "user", false);
  if (!user) return user.error();
  wr.request.user = std::move(*user);
  auto job_id = string_field(obj, "job_id", false);
  if (!job_id) return job_id.error();
  wr.request.job_id = std::move(*job_id);
  auto script = string_field(obj, "script", false);
  if (!script) return script.error();
  wr.request.script = std::move(*script);
  auto hub_home = string_field(obj, "hub_home", false);
  if (!hub_home) return hub_home.error();
  wr.request.hub_home = std::move(*hub_home);
  auto token = string_field(obj, "token", false);
  if (!token) return token.error();
  wr.request.token = std::move(*token);
  if (auto it = obj.find("env"); it != obj.end()) {
    if (!it->is_object()) return bad("request field \"env\" must be an object of strings");
    for (const auto& [name, value] : it->items()) {
      if (!value.is_string()) return bad("request field \"env\" must be an object of strings");
      wr.request.env[name] = value.get<std::string>();
    }
  }
  if (auto st = check_fields_for_op(obj, wr.request.op); !st) return st.error();
  return wr;
}

json request_to_json(const json& id, const core::Request& request) {
  json j{{"v", kVersion}, {"id", id}, {"op", std::string(core::to_string(request.op))}};
  if (request.op == core::Op::status || request.op == core::Op::jobs || request.op == core::Op::metrics) return j;
  j["user"] = request.user;
  if (request.op == core::Op::submit) {
    j["script"] = request.script;
    j["env"] = request.env;
    if (!request.hub_home.empty()) j["hub_home"] = request.hub_home;
    if (!request.token.empty()) j["token"] = request.token;
  } else {
    j["job_id"] = request.job_id;
  }
  return j;
}

json job_to_json(const core::JobExplanation& job) {
  auto or_null = [](const auto& v) { return v ? json(*v) : json(nullptr); };
  return json{{"state", job.state},
              {"exit_code", or_null(job.exit_code)},
              {"signal", or_null(job.signal)},
              {"reason", or_null(job.reason)},
              {"stdout", or_null(job.stdout_path)},
              {"expected_start", or_null(job.expected_start)},
              {"source", job.source}};
}

core::JobExplanation job_from_json(const json& j) {
  core::JobExplanation job;
  job.state = j.at("state").get<std::string>();
  job.source = j.value("source", std::string());
  auto opt_int = [&](const char* key, std::optional<int>& out) {
    if (auto it = j.find(key); it != j.end() && !it->is_null()) out = it->get<int>();
  };
  auto opt_str = [&](const char* key, std::optional<std::string>& out) {
    if (auto it = j.find(key); it != j.end() && !it->is_null()) out = it->get<std::string>();
  };
  opt_int("exit_code", job.exit_code);
  opt_int("signal", job.signal);
  opt_str("reason", job.reason);
  opt_str("stdout", job.stdout_path);
  opt_str("expected_start", job.expected_start);
  return job;
}

json response_to_json(const core::Response& r) {
  json j{{"ok", r.ok()}, {"op", std::string(core::to_string(r.op))}};
  if (!r.user.empty()) j["user"] = r.user;
  if (!r.job_id.empty()) j["job_id"] = r.job_id;
  if (r.state) j["state"] = *r.state;
  if (r.host) j["host"] = *r.host;
  if (r.job) j["job"] = job_to_json(*r.job);
  if (!r.token.empty()) j["token"] = r.token;
  if (!r.resolved.empty()) j["resolved"] = r.resolved;
  if (r.listing) {
    j["tag"] = r.listing->tag;
    j["visible"] = r.listing->visible;
    if (!r.listing->why.empty()) j["why"] = r.listing->why;
    json jobs = json::array();
    for (const auto& job : r.listing->jobs) {
      jobs.push_back({{"job_id", job.job_id}, {"user", job.user}, {"state", job.state}, {"token", job.token}});
    }
    j["jobs"] = std::move(jobs);
  }
  if (r.remote) {
    j["exit_status"] = r.remote->exit_status;
    j["stdout"] = r.remote->out;
    j["stderr"] = r.remote->err;
  }
  if (!r.notices.empty()) j["notices"] = r.notices;
  if (r.slurm) {
    auto or_null = [](const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); };
    j["slurm"] = json{{"state", r.slurm->state},
                      {"node", or_null(r.slurm->node)},
                      {"reason", or_null(r.slurm->reason)},
                      {"expected_start", or_null(r.slurm->expected_start)}};
  }
  j["elapsed_ms"] = r.elapsed_ms;
  if (!r.path.empty()) j["path"] = r.path;
  if (r.error) j["error"] = json{{"code", std::string(to_string(r.error->code))}, {"message", r.error->message}};
  return j;
}

json response_envelope(const json& id, const core::Response& response) {
  json j{{"v", kVersion}, {"id", id}};
  j.update(response_to_json(response));
  return j;
}

json error_envelope(const json& id, const Error& error) {
  return json{{"v", kVersion},
              {"id", id},
              {"ok", false},
              {"error", json{{"code", std::string(to_string(error.code))}, {"message", error.message}}}};
}

json error_codes_json() {
  json codes = json::array();
  for (const auto& info : all_error_codes()) {
    codes.push_back({{"code", std::string(info.name)},
                     {"exit_status", info.exit_status},
                     {"state_unknown", info.state_unknown},
                     {"meaning", std::string(info.meaning)}});
  }
  return json{{"codes", codes}};
}

json status_request(const json& id) { return json{{"v", kVersion}, {"id", id}, {"op", "status"}}; }

json status_envelope(const json& id, const json& status) {
  return json{{"v", kVersion}, {"id", id}, {"ok", true}, {"status", status}};
}

json metrics_request(const json& id) { return json{{"v", kVersion}, {"id", id}, {"op", "metrics"}}; }

json metrics_envelope(const json& id, const std::string& text) {
  return json{{"v", kVersion}, {"id", id}, {"ok", true}, {"metrics", text}};
}

Result<core::Response> response_from_json(const json& j) {
  try {
    core::Response r;
    if (!j.is_object() || !j.contains("ok")) return Error{Errc::internal, "daemon response is not a response object"};
    if (j.contains("op") && !core::op_from_string(j.at("op").get<std::string>(), r.op)) {
      return Error{Errc::internal, "daemon response names an unknown op"};
    }
    if (j.contains("user")) r.user = j.at("user").get<std::string>();
    if (j.contains("job_id")) r.job_id = j.at("job_id").get<std::string>();
    if (j.contains("state")) r.state = j.at("state").get<std::string>();
    if (j.contains("host")) r.host = j.at("host").get<std::string>();
    if (j.contains("job")) r.job = job_from_json(j.at("job"));
    r.token = j.value("token", std::string());
    r.resolved = j.value("resolved", std::string());
    if (auto it = j.find("jobs"); it != j.end() && it->is_array()) {
      core::JobListing listing;
      listing.tag = j.value("tag", std::string());
      listing.visible = j.value("visible", false);
      listing.why = j.value("why", std::string());
      for (const auto& e : *it) {
        listing.jobs.push_back({e.at("job_id").get<std::string>(), e.at("user").get<std::string>(),
                                e.at("state").get<std::string>(), e.at("token").get<std::string>()});
      }
      r.listing = std::move(listing);
    }
    if (j.contains("exit_status")) {
      r.remote = core::RemoteOutcome{j.at("exit_status").get<int>(), j.value("stdout", std::string()),
                                     j.value("stderr", std::string())};
    }
    if (auto it = j.find("slurm"); it != j.end() && it->is_object()) {
      auto opt = [&](const char* name) -> std::optional<std::string> {
        auto f = it->find(name);
        if (f == it->end() || f->is_null()) return std::nullopt;
        return f->get<std::string>();
      };
      r.slurm =
          core::SlurmDetails{it->value("state", std::string()), opt("node"), opt("reason"), opt("expected_start")};
    }
    r.elapsed_ms = j.value("elapsed_ms", std::int64_t{0});
    r.path = j.value("path", std::string());
    if (!j.at("ok").get<bool>()) {
      Error e{Errc::internal, "daemon reported an error without details"};
      if (j.contains("error")) {
        const auto& ej = j.at("error");
        Errc code;
        if (errc_from_string(ej.value("code", std::string()), code)) e.code = code;
        e.message = ej.value("message", e.message);
      }
      r.error = e;
    }
    return r;
  } catch (const json::exception& e) {
    return Error{Errc::internal, fmt::format("daemon response is malformed: {}", e.what())};
  }
}

}  // namespace ssb::protocol
