#!/usr/bin/env bash
# Checks the monitoring examples:
#
#   scripts/check-alerts.sh          (or: make check-alerts)
#
#   - promtool check rules examples/prometheus/alerts.yml
#   - promtool test rules examples/prometheus/alerts_test.yml
#   - examples/grafana/ratewarden.json parses, and every query in it (panel
#     targets and template variables) reads only Ratewarden's metrics;
#     alerts.yml names no other caddy_ metric either.
#
# promtool comes from Debian's prometheus package and jq from Debian's jq:
# when one is missing and we run as root, it is installed with apt-get;
# otherwise the script stops with one line saying what to install. Installing
# the prometheus package does not start a server where invoke-rc.d's policy
# forbids it (containers); where it does start one, the script says so and
# leaves it to the system's service manager.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

RULES=examples/prometheus/alerts.yml
RULE_TESTS=examples/prometheus/alerts_test.yml
DASHBOARD=examples/grafana/ratewarden.json

die() { echo "check-alerts: $*" >&2; exit 1; }

# The metrics Ratewarden exports. Histograms also allow their _bucket, _sum
# and _count series.
COUNTERS_GAUGES="caddy_rate_limit_decisions_total
caddy_rate_limit_store_errors_total
caddy_rate_limit_breaker_state
caddy_rate_limit_store_fallback_decisions_total
caddy_rate_limit_store_round_trips_total
caddy_rate_limit_store_local_cache_hits_total
caddy_rate_limit_memory_keys
caddy_rate_limit_api_key_lookups_total
caddy_rate_limit_overrides_active"
HISTOGRAMS="caddy_rate_limit_decision_duration_seconds
caddy_rate_limit_store_operation_duration_seconds
caddy_rate_limit_store_batch_size"
ALLOWED="$COUNTERS_GAUGES"
for h in $HISTOGRAMS; do
	ALLOWED+=$'\n'"$h"$'\n'"${h}_bucket"$'\n'"${h}_sum"$'\n'"${h}_count"
done

# --- tools -------------------------------------------------------------------
missing=()
for pair in promtool:prometheus jq:jq; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
done
if ((${#missing[@]})); then
	if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
		echo "installing: ${missing[*]}" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
			{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
		for pair in promtool:prometheus jq:jq; do
			command -v "${pair%%:*}" >/dev/null 2>&1 || die "installing ${pair##*:} did not provide ${pair%%:*}"
		done
		# The package's maintainer scripts may have started the server.
		# It belongs to the service manager now: report it, do not kill it.
		if pids=$(pgrep -x prometheus); then
			echo "check-alerts: note: installing prometheus started a server (pid $(echo $pids)); stop it with 'service prometheus stop' if unwanted" >&2
		fi
	else
		die "missing tools: install the Debian packages: ${missing[*]} (apt-get install ${missing[*]})"
	fi
fi

# --- rules -------------------------------------------------------------------
promtool check rules "$RULES"
promtool test rules "$RULE_TESTS"

# --- metric names --------------------------------------------------------------
# unknown_metrics prints, one a line, every identifier in the dashboard's
# PromQL that is not an allowed metric: panel targets' expr, and template
# variables' queries (only label_values' metric argument). The lexing is
# deliberately small: it drops strings, label matchers, ranges, grouping
# clauses, $variables, numbers and durations, function names (followed by
# "(") and keywords, and what is left are metric names.
unknown_metrics() {
	jq -r --arg allowed "$ALLOWED" '
		($allowed | split("\n")) as $ok
		| [ (.panels // [] | .. | objects | select(has("expr")) | .expr),
		    (.templating.list // [] | .[] | select(.type == "query")
		     | (.query | if type == "object" then .query else . end) // ""
		     | capture("label_values\\(\\s*(?<m>[^,)]*)").m // empty) ]
		| map(strings
		      | gsub("\"([^\"\\\\]|\\\\.)*\""; "")
		      | gsub("\\{[^}]*\\}"; "")
		      | gsub("\\[[^\\]]*\\]"; "")
		      | gsub("\\b(by|without|on|ignoring|group_left|group_right)\\s*\\([^)]*\\)"; " ")
		      | gsub("\\$\\{?[A-Za-z_][A-Za-z0-9_]*\\}?"; " ")
		      | [scan("(?<![0-9.A-Za-z_:])[A-Za-z_:][A-Za-z0-9_:]*(?![A-Za-z0-9_:])(?!\\s*\\()")]
		      | .[])
		| map(select(. as $w
		      | ["and", "or", "unless", "offset", "bool", "by", "without", "on",
		         "ignoring", "group_left", "group_right", "Inf", "NaN", "inf", "nan"]
		      | index([$w]) | not))
		| unique - $ok
		| .[]' "$1"
}

# The checker must catch what it is for: a foreign metric in a panel, and one
# in a variable, next to allowed ones.
selftest=$(mktemp)
trap 'rm -f "$selftest"' EXIT
cat >"$selftest" <<'EOF'
{"panels": [{"targets": [{"expr": "sum by (zone) (rate(caddy_rate_limit_decisions_total{outcome=\"x\"}[5m])) / on (job) up offset 5m"}]},
            {"panels": [{"targets": [{"expr": "histogram_quantile(0.99, sum by (le) (rate(caddy_http_request_duration_seconds_bucket[$__rate_interval])))"}]}]}],
 "templating": {"list": [{"type": "query", "query": {"query": "label_values(node_uname_info{job=~\"$job\"}, zone)"}}]}}
EOF
got=$(unknown_metrics "$selftest" | tr '\n' ' ')
[[ "$got" == "caddy_http_request_duration_seconds_bucket node_uname_info up " ]] ||
	die "metric-name checker self-test: got '$got'"

jq -e '.schemaVersion and (.panels | length > 0)' "$DASHBOARD" >/dev/null ||
	die "$DASHBOARD: not a Grafana dashboard (no schemaVersion or panels)"
jq -e '[.templating.list[].name] | index("DS_PROMETHEUS") and index("zone")' "$DASHBOARD" >/dev/null ||
	die "$DASHBOARD: template variables DS_PROMETHEUS and zone are required"
nexpr=$(jq '[.panels | .. | objects | select(has("expr"))] | length' "$DASHBOARD")
((nexpr > 0)) || die "$DASHBOARD: no queries found"
bad=$(unknown_metrics "$DASHBOARD")
[[ -z "$bad" ]] || die "$DASHBOARD queries unknown metrics: $(echo $bad)"

bad=$(grep -o 'caddy_[A-Za-z0-9_]*' "$RULES" | sort -u | grep -vxF "$ALLOWED" || true)
[[ -z "$bad" ]] || die "$RULES names unknown metrics: $(echo $bad)"

echo "check-alerts: $RULES passes promtool; $DASHBOARD: $nexpr queries, all on Ratewarden metrics"
