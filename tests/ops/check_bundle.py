"""Static checks of the operations bundle, run by tests/ops/rules.sh from the repository root.

- Every alert: a severity of critical|warning|info, summary, description and a runbook_url
  whose anchor is a heading of docs/runbook.md; indicator alerts (on org units) carry the
  owning department.
- Every metric a rule or a dashboard query uses is one tiendo exports
  (tests/ops/metrics-contract.txt), a recording rule defined in the rules file, or one of
  Prometheus' own (`up`, `ALERTS`); a selector of one tiendo exports matches only labels the
  contract gives it (or `job`, `instance`).
- Plans never merge: in a rule, every `by (...)`/`on (...)` that keeps `org_unit` keeps `plan`
  too, and an annotation's query of a per-plan metric selects its `plan`.
- Every dashboard: valid JSON, a fixed uid, a `datasource` variable that every panel and
  query uses, unique uids across dashboards.
- Every recording rule is named level:metric:operations.

Prints one line per problem and exits 1 if there is any.
"""

import json
import re
import sys
from pathlib import Path

import yaml

RULES = Path("deploy/prometheus/tiendo-rules.yml")
RUNBOOK = Path("docs/runbook.md")
DASHBOARDS = sorted(Path("deploy/grafana/dashboards").glob("*.json"))
CONTRACT = Path("tests/ops/metrics-contract.txt")
PROMETHEUS_OWN = {"up", "ALERTS"}
RUNBOOK_URL = "https://github.com/tiendo/tiendo/blob/main/docs/runbook.md#"

problems = []


def problem(text):
    problems.append(text)


def anchors(markdown):
    """GitHub's heading anchors: lower case, spaces to dashes, punctuation dropped."""
    out = set()
    for line in markdown.splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*$", line)
        if m:
            text = m.group(1).strip().lower()
            text = re.sub(r"[^\w\- ]", "", text)
            out.add(text.replace(" ", "-"))
    return out


def metric_names(expr):
    """Metric names in a PromQL expression (identifiers that are not functions, keywords,
    labels or durations)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "{}", expr)  # matchers
    expr = re.sub(r"\[[^\]]*\]", "[]", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\$\{?\w+\}?", " ", expr)  # Grafana variables
    expr = re.sub(r"(?<![\w:])\d+(\.\d+)?(ms|[smhdwy])?\b", " ", expr)  # numbers, durations
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        word = m.group(0)
        rest = expr[m.end():].lstrip()
        if rest.startswith("("):
            continue  # a function or an aggregation
        if word in {"and", "or", "unless", "offset", "bool", "by", "without", "on", "ignoring",
                    "group_left", "group_right", "inf", "nan", "e"}:
            continue
        names.add(word)
    return names


def base_name(name):
    return re.sub(r"_(bucket|sum|count)$", "", name)


# name -> its label set; `name{a,b}` or a bare name (no labels).
contract = {}
for line in CONTRACT.read_text().splitlines():
    m = re.fullmatch(r"(\w+)(?:\{([\w,]*)\})?", line.strip())
    if m:
        contract[m.group(1)] = set(filter(None, (m.group(2) or "").split(",")))
rules = yaml.safe_load(RULES.read_text())
runbook_anchors = anchors(RUNBOOK.read_text())
recorded = set()
alerts = []
for group in rules["groups"]:
    for rule in group["rules"]:
        if "record" in rule:
            recorded.add(rule["record"])
            if not re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", rule["record"]):
                problem(f"recording rule {rule['record']} is not named level:metric:operations")
        else:
            alerts.append(rule)


def contract_labels(name):
    return contract.get(name, contract.get(base_name(name)))


def selectors(expr):
    """(metric, label names matched) for each `metric{...}` in an expression."""
    for m in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}", expr):
        yield m.group(1), set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", m.group(2)))


def check_names(where, expr):
    for name in metric_names(expr):
        if name in recorded or name in PROMETHEUS_OWN:
            continue
        if contract_labels(name) is None:
            problem(f"{where}: uses {name}, which tiendo does not export (tests/ops/metrics-contract.txt)")
    for name, matched in selectors(expr):
        allowed = contract_labels(name)
        if allowed is not None and matched - allowed - {"job", "instance", "le"}:
            problem(f"{where}: selects {name} on {sorted(matched - allowed)}, labels it does not have")


for group in rules["groups"]:
    for rule in group["rules"]:
        where = f"rule {rule.get('alert') or rule.get('record')}"
        check_names(where, rule["expr"])
        for m in re.finditer(r"\b(by|on)\s*\(([^)]*)\)", rule["expr"]):
            kept = {l.strip() for l in m.group(2).split(",")}
            if "org_unit" in kept and "plan" not in kept:
                problem(f"{where}: `{m.group(0)}` keeps org_unit without plan: two plans' series would merge")
        for key, text in rule.get("annotations", {}).items():
            for query in re.findall(r'printf\s+"((?:[^"\\]|\\.)*)"', text):
                query = query.replace('\\"', '"')
                check_names(f"{where} annotation {key}", query)
                for name, matched in selectors(query):
                    if "plan" in (contract_labels(name) or ()) and "plan" not in matched:
                        problem(f"{where} annotation {key}: queries {name} without its plan")

for alert in alerts:
    name = alert["alert"]
    labels = alert.get("labels", {})
    annotations = alert.get("annotations", {})
    if labels.get("severity") not in {"critical", "warning", "info"}:
        problem(f"alert {name}: severity {labels.get('severity')!r} is not critical|warning|info")
    for key in ("summary", "description", "runbook_url"):
        if not annotations.get(key):
            problem(f"alert {name}: no {key} annotation")
    url = annotations.get("runbook_url", "")
    if not url.startswith(RUNBOOK_URL):
        problem(f"alert {name}: runbook_url {url} does not point into docs/runbook.md")
    elif url[len(RUNBOOK_URL):] != name.lower():
        problem(f"alert {name}: runbook_url anchor is not #{name.lower()}")
    elif url[len(RUNBOOK_URL):] not in runbook_anchors:
        problem(f"alert {name}: docs/runbook.md has no heading for #{name.lower()}")
    if "org_unit" in alert["expr"] and name.startswith("TiendoIndicator") and "department" not in alert["expr"]:
        problem(f"alert {name}: an indicator alert without the owning department")
    if "humanizePercentage" not in annotations.get("description", "") and "ratio" in alert["expr"] \
            and name in {"TiendoIndicatorBehindTrajectory", "TiendoIndicatorTargetMissed"}:
        problem(f"alert {name}: figures in the description are not in percent")

uids = {}
for path in DASHBOARDS:
    try:
        dash = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        problem(f"{path}: not valid JSON: {e}")
        continue
    uid = dash.get("uid")
    if not uid:
        problem(f"{path}: no fixed uid")
    elif uid in uids:
        problem(f"{path}: uid {uid} is also {uids[uid]}'s")
    uids[uid] = path
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    if variables.get("datasource", {}).get("type") != "datasource":
        problem(f"{path}: no `datasource` template variable")
    queries = 0
    for panel in dash.get("panels", []):
        title = panel.get("title")
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            problem(f"{path}: panel {title!r} does not use the datasource variable")
        for t in panel.get("targets", []):
            queries += 1
            if t.get("datasource", {}).get("uid") != "${datasource}":
                problem(f"{path}: a query of {title!r} does not use the datasource variable")
            check_names(f"{path.name} panel {title!r}", t.get("expr", ""))
    for v in variables.values():
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query", "") if isinstance(q, dict) else q
            # label_values(SELECTOR, LABEL): only the selector names a metric.
            m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", q)
            check_names(f"{path.name} variable {v['name']}", m.group(1) if m else q)
    if queries == 0:
        problem(f"{path}: no queries")

if not DASHBOARDS:
    problem("no dashboards in deploy/grafana/dashboards")

for line in problems:
    print(line)
print(f"{len(alerts)} alerts, {len(recorded)} recording rules, {len(DASHBOARDS)} dashboards: "
      f"{len(problems)} problem(s)", file=sys.stderr)
sys.exit(1 if problems else 0)
