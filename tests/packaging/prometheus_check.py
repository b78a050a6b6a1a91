"""Checks for packaging.prometheus_rules (tests/packaging/prometheus_rules.sh).

Subcommands:
  fetch URL OUT [--wait S]        GET URL (retried until S seconds passed) into OUT
  parse HTTP_TEXT CLI_TEXT        both parse with prometheus_client's parser and
                                  declare the same families, types and label names
  drift --scrape F --rules R --dashboard D [--error-codes J]
                                  every slurm_ssh_bridge_* name and label matcher the
                                  rules and the dashboard use exists in the scrape
  prometheus --url U --timeout S  a real Prometheus scrapes the bridge (up == 1),
                                  loaded the rules, and shows the expected alerts
  screenshot --url U --out PNG    Prometheus's alerts page (Debian's classic UI), in
                                  headless Chromium (tests/hub/chromium_shot.py),
                                  once it shows the pending alert

Each check prints "ok: ..." or "FAIL: ..."; the exit status is 1 on any FAIL.
"""

import argparse
import os
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml
from prometheus_client.parser import text_string_to_metric_families

PREFIX = "slurm_ssh_bridge_"
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"instance", "job"}
# The op label's values: core::to_string(Op) (src/core/request.cpp). The
# scrape holds only the ops that were asked, so they are listed here.
OPS = {"submit", "query", "cancel", "status", "explain", "jobs", "metrics"}

NAME_RE = re.compile(r"\b(" + PREFIX + r"[a-zA-Z0-9_]*)")
SELECTOR_RE = re.compile(r"\b(" + PREFIX + r"[a-zA-Z0-9_]*)\s*(\{[^}]*\})?")
MATCHER_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
GROUPING_RE = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


class Checks:
    def __init__(self):
        self.failed = 0

    def ok(self, what):
        print(f"ok: {what}")

    def fail(self, what):
        print(f"FAIL: {what}")
        self.failed += 1

    def expect(self, cond, what):
        (self.ok if cond else self.fail)(what)
        return cond

    def exit(self):
        sys.exit(1 if self.failed else 0)


# ---------------------------------------------------------------- the scrape


class Family:
    def __init__(self, name, typ):
        self.name = name
        self.type = typ
        self.labels = set()
        self.values = {}  # label -> values seen
        self.samples = 0

    def series_names(self):
        """The names a PromQL selector may use for this family."""
        if self.type == "counter":
            return {self.name if self.name.endswith("_total") else self.name + "_total"}
        if self.type == "histogram":
            return {self.name + s for s in ("_bucket", "_sum", "_count")}
        if self.type == "summary":
            return {self.name, self.name + "_sum", self.name + "_count"}
        return {self.name}


def parse_families(text):
    families = {}
    for f in text_string_to_metric_families(text):
        fam = Family(f.name, f.type)
        for s in f.samples:
            fam.samples += 1
            for k, v in s.labels.items():
                fam.labels.add(k)
                fam.values.setdefault(k, set()).add(v)
        families[f.name] = fam
    return families


def declared_types(text):
    """The families the text declares with # TYPE (name -> type)."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[:2] == ["#", "TYPE"]:
            out[parts[2]] = parts[3]
    return out


def series_index(families):
    index = {}
    for fam in families.values():
        for n in fam.series_names():
            index[n] = fam
    return index


# ------------------------------------------------------------------- drift


def exprs_of_rules(path):
    doc = yaml.safe_load(open(path, encoding="utf-8"))
    out = []
    for group in doc.get("groups", []):
        for rule in group.get("rules", []):
            out.append((f"rule {rule.get('alert') or rule.get('record')}", rule, str(rule.get("expr", ""))))
    return doc, out


def panels_of(dashboard):
    for p in dashboard.get("panels", []):
        yield p
        yield from p.get("panels", [])  # a collapsed row's panels


def exprs_of_dashboard(dashboard):
    out = []
    for p in panels_of(dashboard):
        for t in p.get("targets", []):
            if "expr" in t:
                out.append((f"panel {p.get('id')} ({p.get('title')}) {t.get('refId')}", t["expr"]))
    for v in dashboard.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else q
        if v.get("type") == "query":
            out.append((f"variable {v.get('name')}", q or ""))
            if v.get("definition"):
                out.append((f"variable {v.get('name')} definition", v["definition"]))
    return out


def allowed_values(fam, label, error_codes):
    if label == "outcome" and error_codes is not None:
        return {"ok"} | error_codes
    if label == "op":
        return OPS | fam.values.get(label, set())
    return fam.values.get(label)


def check_expr(c, where, expr, index, error_codes):
    names = NAME_RE.findall(expr)
    if not names:
        # Only the target-down alert: it selects the scrape job by name.
        c.expect(re.search(r'\bup\{job="slurm-ssh-bridge"\}', expr),
                 f"{where}: no {PREFIX}* metric, selects up{{job=\"slurm-ssh-bridge\"}}: {expr!r}")
        return
    used = []
    bad = False
    for name, braces in SELECTOR_RE.findall(expr):
        fam = index.get(name)
        if fam is None:
            c.fail(f"{where}: {name} is not in the scrape")
            bad = True
            continue
        used.append(fam)
        for label, op, value in MATCHER_RE.findall(braces or ""):
            if label in TARGET_LABELS:
                continue
            if fam.samples == 0:
                c.fail(f"{where}: {name} has no sample in the scrape: its label {label} cannot be verified")
                bad = True
            elif label not in fam.labels:
                c.fail(f"{where}: {name} has no label {label} (it has {sorted(fam.labels) or 'none'})")
                bad = True
            elif "$" not in value and (op in ("=", "!=") or re.fullmatch(r"[a-zA-Z0-9_.]+(\|[a-zA-Z0-9_.]+)*", value)):
                # A literal, or a regex that only lists literals (a|b).
                allowed = allowed_values(fam, label, error_codes)
                wrong = [v for v in (value.split("|") if op in ("=~", "!~") else [value])
                         if allowed is not None and v not in allowed]
                if wrong:
                    c.fail(f"{where}: {name}{{{label}{op}\"{value}\"}}: no such {label} {wrong} "
                           f"(known: {sorted(allowed)})")
                    bad = True
    have = set(TARGET_LABELS)
    for fam in used:
        have |= fam.labels
    for group in GROUPING_RE.findall(expr):
        for label in (x.strip() for x in group.split(",")):
            if label and label not in have:
                c.fail(f"{where}: grouping label {label} is on none of {sorted(f.name for f in used)}")
                bad = True
    if not bad:
        c.ok(f"{where}: {', '.join(sorted(set(names)))}")


def check_rules_shape(c, doc, rules):
    groups = [g.get("name") for g in doc.get("groups", [])]
    c.expect(groups == ["slurm-ssh-bridge"], f"rules: one group named slurm-ssh-bridge (got {groups})")
    for where, rule, _ in rules:
        if "alert" not in rule:
            continue
        ann = rule.get("annotations") or {}
        c.expect("for" in rule and (rule.get("labels") or {}).get("severity") and ann.get("summary")
                 and ann.get("description"),
                 f"{where}: has for, labels.severity, annotations.summary and .description")


def check_dashboard_shape(c, dashboard):
    ids = [p.get("id") for p in panels_of(dashboard)]
    c.expect(ids and all(isinstance(i, int) for i in ids) and len(ids) == len(set(ids)),
             f"dashboard: {len(ids)} panels, unique integer ids")
    cells = {}
    overlap = []
    for p in panels_of(dashboard):
        g = p.get("gridPos") or {}
        if not all(isinstance(g.get(k), int) for k in ("x", "y", "w", "h")) or g["x"] + g["w"] > 24:
            c.fail(f"dashboard: panel {p.get('id')} has no valid gridPos ({g})")
            continue
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    overlap.append((cells[(x, y)], p.get("id")))
                cells[(x, y)] = p.get("id")
    c.expect(not overlap, f"dashboard: no panels overlap{'' if not overlap else ' ' + str(sorted(set(overlap)))}")
    c.expect(isinstance(dashboard.get("schemaVersion"), int) and dashboard["schemaVersion"] >= 36,
             f"dashboard: schemaVersion {dashboard.get('schemaVersion')}")
    names = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    c.expect(names.get("datasource", {}).get("type") == "datasource" and "instance" in names,
             "dashboard: datasource and instance template variables")
    wrong_ds = [p.get("id") for p in panels_of(dashboard) if p.get("type") != "row"
                and (p.get("datasource") or {}).get("uid") != "${datasource}"]
    c.expect(not wrong_ds, f"dashboard: every panel uses the ${{datasource}} variable {wrong_ds or ''}")


def cmd_drift(args):
    c = Checks()
    text = open(args.scrape, encoding="utf-8").read()
    families = parse_families(text)
    index = series_index(families)
    error_codes = None
    if args.error_codes:
        error_codes = {e["code"] for e in json.load(open(args.error_codes, encoding="utf-8"))["codes"]}
    try:
        doc, rules = exprs_of_rules(args.rules)
    except (OSError, yaml.YAMLError) as e:
        c.fail(f"rules: {args.rules} is not valid YAML: {e}")
        c.exit()
    check_rules_shape(c, doc, rules)
    for where, rule, expr in rules:
        check_expr(c, where, expr, index, error_codes)
        for key, value in (rule.get("annotations") or {}).items():
            for name in NAME_RE.findall(str(value)):
                c.expect(name in families or name in index,
                         f"{where}: annotation {key} names {name}, "
                         f"{'in' if name in families or name in index else 'not in'} the scrape")
    try:
        dashboard = json.load(open(args.dashboard, encoding="utf-8"))
    except (OSError, ValueError) as e:
        c.fail(f"dashboard: {args.dashboard} is not valid JSON: {e}")
        c.exit()
    c.ok("dashboard: valid JSON")
    check_dashboard_shape(c, dashboard)
    for where, expr in exprs_of_dashboard(dashboard):
        check_expr(c, where, expr, index, error_codes)
    c.exit()


# ------------------------------------------------------------------- parse


def cmd_parse(args):
    c = Checks()
    parsed = {}
    for label, path in (("HTTP scrape", args.http), ("CLI metrics", args.cli)):
        text = open(path, encoding="utf-8").read()
        try:
            fams = parse_families(text)
        except Exception as e:  # the parser raises ValueError and friends
            c.fail(f"{label}: prometheus_client cannot parse it: {e}")
            continue
        declared = declared_types(text)
        ours = [n for n in declared if n.startswith(PREFIX)]
        c.expect(len(ours) == len(declared) and len(fams) == len(declared),
                 f"{label}: {len(fams)} families parsed, {len(declared)} declared by # TYPE, all {PREFIX}*")
        parsed[label] = fams
    if len(parsed) == 2:
        a, b = parsed.values()
        shape = {n: (f.type, frozenset(f.labels)) for n, f in a.items()}
        other = {n: (f.type, frozenset(f.labels)) for n, f in b.items()}
        diff = sorted(set(shape.items()) ^ set(other.items()))
        c.expect(not diff, f"HTTP scrape and CLI metrics declare the same families, types and labels {diff or ''}")
        fam = a.get(PREFIX + "connections")
        states = fam.values.get("state", set()) if fam else set()
        always = {"connecting", "connected", "backoff", "disconnected"}
        c.expect(always <= states, f"{PREFIX}connections has a series for each of {sorted(always)}")
        if states - always:
            # A worker not yet started reports its initial state, "idle"
            # (worker.hpp), as a series of its own.
            print(f"note: {PREFIX}connections also has state {sorted(states - always)} in this scrape")
    c.exit()


# -------------------------------------------------------------- prometheus


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


def cmd_prometheus(args):
    c = Checks()
    base = args.url.rstrip("/")
    deadline = time.monotonic() + args.timeout
    up = None
    alerts = []
    last_error = ""
    q = urllib.parse.urlencode({"query": 'up{job="slurm-ssh-bridge"}'})
    while time.monotonic() < deadline:
        try:
            result = get_json(f"{base}/api/v1/query?{q}")["data"]["result"]
            up = [r["value"][1] for r in result]
            alerts = get_json(f"{base}/api/v1/alerts")["data"]["alerts"]
        except (OSError, ValueError, KeyError) as e:
            last_error = str(e)
            time.sleep(1)
            continue
        states = {a["labels"].get("alertname"): a.get("state") for a in alerts}
        last_error = ""
        if up == ["1"] and states.get(args.expect_active) in ("pending", "firing"):
            break
        time.sleep(1)
    waited = args.timeout - max(0.0, deadline - time.monotonic())
    c.expect(up == ["1"], f'Prometheus: up{{job="slurm-ssh-bridge"}} = {up} after {waited:.0f} s {last_error}')
    states = {a["labels"].get("alertname"): a.get("state") for a in alerts}
    c.expect(states.get(args.expect_active) in ("pending", "firing"),
             f"Prometheus: {args.expect_active} is {states.get(args.expect_active, 'absent')} "
             "(the login host is port 1: nothing connects)")
    for name in args.expect_absent:
        c.expect(name not in states, f"Prometheus: {name} is {states.get(name, 'absent')}")
    try:
        groups = get_json(f"{base}/api/v1/rules")["data"]["groups"]
        rules = [r for g in groups if g["name"] == "slurm-ssh-bridge" for r in g["rules"]]
        unhealthy = [(r["name"], r.get("lastError")) for r in rules if r.get("health") != "ok"]
        c.expect(rules and not unhealthy,
                 f"Prometheus: group slurm-ssh-bridge loaded, {len(rules)} rules evaluated without error "
                 f"{unhealthy or ''}")
    except (OSError, ValueError, KeyError) as e:
        c.fail(f"Prometheus: /api/v1/rules: {e}")
    c.exit()


def cmd_screenshot(args):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hub"))
    import chromium_shot  # noqa: E402 (needs python3-websocket, only here)

    c = Checks()
    try:
        state = chromium_shot.screenshot_page(f"{args.url.rstrip('/')}{args.path}", [], args.out, args.path, "body",
                                              args.expect_text)
        c.ok(f"screenshot of {args.path} showing {args.expect_text} ({state['title']}): {args.out}")
    except (chromium_shot.ShotError, OSError) as e:
        c.fail(f"screenshot of {args.path}: {e}")
    c.exit()


# ------------------------------------------------------------------- small


def cmd_fetch(args):
    deadline = time.monotonic() + args.wait
    while True:
        try:
            with urllib.request.urlopen(args.url, timeout=5) as r:
                body = r.read()
                ctype = r.headers.get("Content-Type", "")
            break
        except (OSError, urllib.error.URLError) as e:
            if time.monotonic() > deadline:
                print(f"FAIL: GET {args.url}: {e}")
                sys.exit(1)
            time.sleep(0.2)
    open(args.out, "wb").write(body)
    good = ctype.startswith("text/plain") and "version=0.0.4" in ctype
    print(f"{'ok' if good else 'FAIL'}: GET {args.url}: {len(body)} bytes, Content-Type {ctype}")
    sys.exit(0 if good else 1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch")
    f.add_argument("url")
    f.add_argument("out")
    f.add_argument("--wait", type=float, default=0)
    f.set_defaults(fn=cmd_fetch)
    pa = sub.add_parser("parse")
    pa.add_argument("http")
    pa.add_argument("cli")
    pa.set_defaults(fn=cmd_parse)
    d = sub.add_parser("drift")
    d.add_argument("--scrape", required=True)
    d.add_argument("--rules", required=True)
    d.add_argument("--dashboard", required=True)
    d.add_argument("--error-codes")
    d.set_defaults(fn=cmd_drift)
    pr = sub.add_parser("prometheus")
    pr.add_argument("--url", required=True)
    pr.add_argument("--timeout", type=float, default=60)
    pr.add_argument("--expect-active", default="SlurmSshBridgeNoConnection")
    pr.add_argument("--expect-absent", nargs="*", default=["SlurmSshBridgeSubmitUnknown", "SlurmSshBridgeDown"])
    pr.set_defaults(fn=cmd_prometheus)
    sh = sub.add_parser("screenshot")
    sh.add_argument("--url", required=True)
    sh.add_argument("--out", required=True)
    # Debian's prometheus ships the classic web UI only (/alerts is 404).
    sh.add_argument("--path", default="/classic/alerts")
    sh.add_argument("--expect-text", default="SlurmSshBridgeNoConnection")
    sh.set_defaults(fn=cmd_screenshot)
    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
