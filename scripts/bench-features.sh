#!/usr/bin/env bash
# Load benchmark of what API keys and metrics cost, with wrk on loopback.
#
#   scripts/bench-features.sh       (or: make bench-features)
#
# Three Caddy processes run side by side, all sending X-API-Key with every
# request: header-key (the zone keyed on the header; metrics on), api-key
# (the same with a verified, required API key) and no-metrics (header-key
# with disable_metrics). wrk visits them in turn for BENCH_ROUNDS slices,
# rotating the order, so load from elsewhere hits all alike; each ratio is
# the median of the per-round ratios. Appends a section to docs/benchmarks.md.
#
# Environment: BENCH_DURATION (seconds per scenario, default 10),
# BENCH_ROUNDS (default 5), BENCH_THREADS (2), BENCH_CONNECTIONS (50),
# BENCH_OUT (default docs/benchmarks.md; "" to skip), CADDY (default ./caddy).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DURATION="${BENCH_DURATION:-10}"
ROUNDS="${BENCH_ROUNDS:-5}"
THREADS="${BENCH_THREADS:-2}"
CONNECTIONS="${BENCH_CONNECTIONS:-50}"
OUT="${BENCH_OUT-docs/benchmarks.md}"
CADDY="${CADDY:-$ROOT/caddy}"

die() { echo "bench-features: $*" >&2; exit 1; }
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

for n in "$DURATION" "$ROUNDS" "$THREADS" "$CONNECTIONS"; do
	[[ "$n" =~ ^[1-9][0-9]*$ ]] || die "BENCH_DURATION, BENCH_ROUNDS, BENCH_THREADS and BENCH_CONNECTIONS must be positive integers"
done
((DURATION <= 600)) || die "BENCH_DURATION is capped at 600 seconds"
((ROUNDS <= DURATION)) || ROUNDS=$DURATION
SLICE=$((DURATION / ROUNDS))
command -v wrk >/dev/null && command -v curl >/dev/null || die "needs wrk and curl: make bench-deps"
[[ -x "$CADDY" ]] || make -C "$ROOT" build >&2

bench_workdir bench-features

SCENARIOS=(header-key api-key no-metrics)
declare -A URL_OF ADMIN_OF RPS_AT REQS SECS BAD
for s in "${SCENARIOS[@]}"; do
	start_caddy "$s" "examples/bench/$s.Caddyfile"
	URL_OF[$s]="http://127.0.0.1:$PORT/"
	ADMIN_OF[$s]=$ADMIN
done

# A real API key, created through the admin API of the api-key instance.
CREATED=$(curl -fsS -H 'Content-Type: application/json' -d '{"name":"bench"}' \
	"http://127.0.0.1:${ADMIN_OF[api-key]}/rate_limit/v1/keys") || die "creating an API key failed"
SECRET=$(printf '%s' "$CREATED" | grep -o '"secret": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/')
[[ "$SECRET" == rwk_* ]] || die "no secret in the create response"
HEADER="X-API-Key: $SECRET"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "$HEADER" "${URL_OF[api-key]}")
[[ "$code" == 200 ]] || die "the created key is refused ($code)"

run() { # run NAME SECONDS: sets RPS, REQUESTS, ELAPSED, NONOK
	local f="$WORK/$1.wrk"
	wrk -t"$THREADS" -c"$CONNECTIONS" -d"${2}s" -H "$HEADER" "${URL_OF[${1%%@*}]}" >"$f" 2>&1 || { cat "$f" >&2; die "wrk failed"; }
	RPS=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$f")
	REQUESTS=$(awk '/ requests in / {print $1}' "$f")
	NONOK=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$f")
	NONOK=${NONOK:-0}
}
for s in "${SCENARIOS[@]}"; do run "$s@warmup" 1; done
for ((r = 0; r < ROUNDS; r++)); do
	for ((i = 0; i < ${#SCENARIOS[@]}; i++)); do
		s=${SCENARIOS[(i + r) % ${#SCENARIOS[@]}]}
		run "$s@$r" "$SLICE"
		RPS_AT[$s,$r]=$RPS
		REQS[$s]=$((${REQS[$s]:-0} + REQUESTS))
		BAD[$s]=$((${BAD[$s]:-0} + NONOK))
	done
	note "round $((r + 1))/$ROUNDS: $(for s in "${SCENARIOS[@]}"; do printf '%s %s  ' "$s" "${RPS_AT[$s,$r]}"; done)"
done

# median A B: the median of the per-round ratios A/B; range A B their span.
ratios() { local r; for ((r = 0; r < ROUNDS; r++)); do ratio "${RPS_AT[$1,$r]}" "${RPS_AT[$2,$r]}"; echo; done | sort -g; }
median() { ratios "$1" "$2" | awk '{ v[NR] = $1 } END { if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
span() { ratios "$1" "$2" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s–%s", lo, hi }'; }
mean() { awk -v n="${REQS[$1]}" -v t="$((SLICE * ROUNDS))" 'BEGIN { printf "%.0f", n / t }'; }

KEYS_RATIO=$(median api-key header-key)
METRICS_RATIO=$(median header-key no-metrics)
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")
[[ -z "$(git -C "$ROOT" status --porcelain 2>/dev/null | head -1)" ]] || REV="$REV (dirty)"
REPORT="$WORK/report.md"
{
	echo "## $(date -u '+%Y-%m-%d %H:%M UTC'), $REV: API keys and metrics (scripts/bench-features.sh)"
	echo
	echo "$(nproc) cores, wrk -t$THREADS -c$CONNECTIONS, ${DURATION}s per scenario in $ROUNDS interleaved rounds; ratios are medians of per-round ratios."
	echo
	echo "| scenario | req/s | non-2xx |"
	echo "| --- | ---: | ---: |"
	for s in "${SCENARIOS[@]}"; do echo "| $s | $(mean "$s") | ${BAD[$s]} |"; done
	echo
	echo "- API key lookup (warm): api-key / header-key = $KEYS_RATIO (rounds $(span api-key header-key)); target >= 0.95: $(at_least "$KEYS_RATIO" 0.95)"
	echo "- metrics on / disable_metrics = $METRICS_RATIO (rounds $(span header-key no-metrics)); target >= 0.97: $(at_least "$METRICS_RATIO" 0.97)"
	echo
} >"$REPORT"
cat "$REPORT"
if [[ -n "$OUT" ]]; then
	cat "$REPORT" >>"$OUT"
	echo "bench-features: appended to $OUT" >&2
fi
