#!/usr/bin/env bash
# Load benchmark of the rate_limit handler with wrk, on loopback only.
#
#   scripts/bench-wrk.sh            (or: make bench-wrk)
#
# Runs each scenario against a fresh Caddy process for BENCH_DURATION seconds,
# prints a table of requests/sec with ratios against plain Caddy, and appends
# a dated section to docs/benchmarks.md. Every process it starts is stopped by
# PID when it exits.
#
# Environment:
#   BENCH_DURATION     seconds per scenario (default 10)
#   BENCH_ROUNDS       slices scenarios 1-5 are interleaved in (default 5)
#   BENCH_THREADS      wrk threads (default 2)
#   BENCH_CONNECTIONS  wrk connections (default 50)
#   BENCH_KEYS         distinct keys in the many-keys scenarios (default 100000)
#   BENCH_ALGORITHMS   algorithms for the bytes-per-key table
#                      (default: gcra token_bucket fixed_window sliding_window sliding_log concurrency)
#   BENCH_OUT          markdown file to append to (default docs/benchmarks.md; "" to skip)
#   CADDY              the Caddy binary (default ./caddy, built with make build if missing)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DURATION="${BENCH_DURATION:-10}"
THREADS="${BENCH_THREADS:-2}"
CONNECTIONS="${BENCH_CONNECTIONS:-50}"
KEYS="${BENCH_KEYS:-100000}"
ALGORITHMS="${BENCH_ALGORITHMS:-gcra token_bucket fixed_window sliding_window sliding_log concurrency}"
ROUNDS="${BENCH_ROUNDS:-5}"
OUT="${BENCH_OUT-docs/benchmarks.md}"
CADDY="${CADDY:-$ROOT/caddy}"
export BENCH_THREADS="$THREADS" BENCH_KEYS="$KEYS"

die() { echo "bench-wrk: $*" >&2; exit 1; }
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

for n in "$DURATION" "$THREADS" "$CONNECTIONS" "$KEYS"; do
	[[ "$n" =~ ^[1-9][0-9]*$ ]] || die "BENCH_DURATION, BENCH_THREADS, BENCH_CONNECTIONS and BENCH_KEYS must be positive integers"
done
((DURATION <= 600)) || die "BENCH_DURATION is capped at 600 seconds"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
((ROUNDS <= DURATION)) || ROUNDS=$DURATION
SLICE=$((DURATION / ROUNDS))

# --- tools -------------------------------------------------------------------
missing=()
for pair in wrk:wrk curl:curl; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
done
if ((${#missing[@]})); then
	if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
		echo "installing: ${missing[*]}" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
			{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
	else
		die "missing tools: install the Debian packages: ${missing[*]} (apt-get install ${missing[*]})"
	fi
fi
if [[ ! -x "$CADDY" ]]; then
	[[ "$CADDY" == "$ROOT/caddy" ]] || die "CADDY=$CADDY is not an executable"
	make -C "$ROOT" build >&2
fi

# --- processes ---------------------------------------------------------------
bench_workdir bench-wrk

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# live_heap prints the heap in use after a forced collection, in bytes
# (pprof's heap endpoint runs a GC with gc=1; expvar then reads memstats).
live_heap() {
	curl -fs -o /dev/null "http://127.0.0.1:$ADMIN/debug/pprof/heap?gc=1"
	curl -fs "http://127.0.0.1:$ADMIN/debug/vars" | grep -o '"HeapAlloc": *[0-9]*' | grep -o '[0-9]*$'
}

# run_wrk NAME SECONDS [wrk args...] URL: runs wrk and sets RPS, REQUESTS,
# ELAPSED (seconds), NON2XX (responses that were not 2xx/3xx), ERRORS (socket
# errors), and with scripts/wrk-keys.lua TOUCHED and SENT_MIN.
run_wrk() {
	local name=$1 secs=$2 f
	shift 2
	f="$WORK/$name.wrk"
	wrk -t"$THREADS" -c"$CONNECTIONS" -d"${secs}s" "$@" >"$f" 2>&1 || { cat "$f" >&2; die "wrk failed in scenario $name"; }
	RPS=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$f")
	NON2XX=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$f")
	NON2XX=${NON2XX:-0}
	ERRORS=$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$f")
	ERRORS=${ERRORS:-0}
	TOUCHED=$(awk '/^keys_touched/ {print $2}' "$f")
	SENT_MIN=$(awk '/^sent_min/ {print $2}' "$f")
	REQUESTS=$(awk '/ requests in / {print $1}' "$f")
	# "123 requests in 2.00s, ..." (wrk writes us, ms, s or m)
	ELAPSED=$(awk '/ requests in / {
		d = $4; sub(/,$/, "", d)
		if (d ~ /us$/) { sub(/us$/, "", d); d /= 1e6 } else if (d ~ /ms$/) { sub(/ms$/, "", d); d /= 1e3 }
		else if (d ~ /m$/) { sub(/m$/, "", d); d *= 60 } else { sub(/s$/, "", d) }
		print d + 0 }' "$f")
	[[ -n "$RPS" ]] || { cat "$f" >&2; die "no Requests/sec in wrk output for $name"; }
}

stop_caddy() {
	stop_pid "$CADDY_PID"
}

mb() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }
per_key() { awk -v bytes="$1" -v keys="$2" 'BEGIN { if (keys > 0) printf "%.0f", bytes / keys; else print "n/a" }'; }

WARMUP=1
LUA="$ROOT/scripts/wrk-keys.lua"
ROWS=()
add_row() { ROWS+=("$(printf '| %s | %s | %s | %s |' "$1" "$2" "$3" "$4")"); }

echo "bench-wrk: $CADDY, ${DURATION}s per scenario ($ROUNDS rounds of ${SLICE}s), wrk -t$THREADS -c$CONNECTIONS, $KEYS keys" >&2

# Scenarios 1-5 run side by side: one Caddy each, all started up front, and
# wrk visits them in turn for ROUNDS slices of SLICE seconds, rotating the
# order every round. Load from elsewhere on the machine then hits every
# scenario alike, and each ratio is the median of its per-round ratios.
SCENARIOS=(plain one-key many-keys reject proxy)
declare -A URL_OF PID_OF ADMIN_OF RPS_AT REQS SECS NON2XX_OF ERRORS_OF

start_scenario() {
	local s=$1
	start_caddy "$@"
	URL_OF[$s]="http://127.0.0.1:$PORT/"
	PID_OF[$s]=$CADDY_PID
	ADMIN_OF[$s]=$ADMIN
}

# median_ratio A B: the median over rounds of A's req/s over B's.
median_ratio() {
	local r
	for ((r = 0; r < ROUNDS; r++)); do
		ratio "${RPS_AT[$1,$r]}" "${RPS_AT[$2,$r]}"
		echo
	done | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ratio_range A B: "min–max" of the per-round ratios.
ratio_range() {
	local r
	for ((r = 0; r < ROUNDS; r++)); do
		ratio "${RPS_AT[$1,$r]}" "${RPS_AT[$2,$r]}"
		echo
	done | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s–%s", lo, hi }'
}

start_scenario plain examples/bench/plain.Caddyfile
start_scenario one-key examples/bench/one-key.Caddyfile
start_scenario many-keys examples/bench/many-keys.Caddyfile BENCH_ALGORITHM=gcra
start_scenario reject examples/bench/reject.Caddyfile
UPSTREAM=$(free_port)
start_scenario proxy examples/bench/proxy.Caddyfile BENCH_UPSTREAM_PORT="$UPSTREAM"

for s in "${SCENARIOS[@]}"; do
	run_wrk "$s-warmup" "$WARMUP" "${URL_OF[$s]}"
done
ADMIN=${ADMIN_OF[many-keys]}
RSS0=$(rss_kb "${PID_OF[many-keys]}")
HEAP0=$(live_heap)

KEY_START=0
TOUCHED_MANY=0
for ((r = 0; r < ROUNDS; r++)); do
	for ((i = 0; i < ${#SCENARIOS[@]}; i++)); do
		s=${SCENARIOS[(i + r) % ${#SCENARIOS[@]}]}
		if [[ "$s" == many-keys ]]; then
			BENCH_KEY_START=$KEY_START run_wrk "$s-$r" "$SLICE" -s "$LUA" "${URL_OF[$s]}"
			KEY_START=$SENT_MIN
			TOUCHED_MANY=$TOUCHED
		else
			run_wrk "$s-$r" "$SLICE" "${URL_OF[$s]}"
		fi
		RPS_AT[$s,$r]=$RPS
		REQS[$s]=$((${REQS[$s]:-0} + REQUESTS))
		SECS[$s]=$(awk -v a="${SECS[$s]:-0}" -v b="$ELAPSED" 'BEGIN { print a + b }')
		NON2XX_OF[$s]=$((${NON2XX_OF[$s]:-0} + NON2XX))
		ERRORS_OF[$s]=$((${ERRORS_OF[$s]:-0} + ERRORS))
	done
	note "round $((r + 1))/$ROUNDS: $(for s in "${SCENARIOS[@]}"; do printf '%s %s  ' "$s" "${RPS_AT[$s,$r]}"; done)"
done

ADMIN=${ADMIN_OF[many-keys]}
RSS1=$(rss_kb "${PID_OF[many-keys]}")
HEAP1=$(live_heap)
for s in "${SCENARIOS[@]}"; do stop_pid "${PID_OF[$s]}"; done

mean_rps() { awk -v n="${REQS[$1]}" -v t="${SECS[$1]}" 'BEGIN { if (t > 0) printf "%.0f", n / t; else print 0 }'; }
PLAIN=$(mean_rps plain)
ONEKEY=$(mean_rps one-key)
MANY=$(mean_rps many-keys)
REJECT=$(mean_rps reject)
PROXY=$(mean_rps proxy)
MANY_RATIO=$(median_ratio many-keys plain)
REJECT_VS_ONEKEY=$(median_ratio reject one-key)
REJECT_VS_PROXY=$(median_ratio reject proxy)
RSS_GROWTH_KB=$((RSS1 - RSS0))
TOUCHED=$TOUCHED_MANY

add_row "1. plain \`respond\` (no rate_limit)" "$PLAIN" "1.00" "errors ${ERRORS_OF[plain]}"
add_row "2. one key, all allowed (gcra)" "$ONEKEY" "$(median_ratio one-key plain)" \
	"rounds $(ratio_range one-key plain); non-2xx ${NON2XX_OF[one-key]}, errors ${ERRORS_OF[one-key]}"
add_row "3. $KEYS keys (gcra), all allowed" "$MANY" "$MANY_RATIO" \
	"rounds $(ratio_range many-keys plain); keys $TOUCHED; RSS +$(mb "$RSS_GROWTH_KB") MB ($(per_key $((RSS_GROWTH_KB * 1024)) "$TOUCHED") B/key); live heap +$(per_key $((HEAP1 - HEAP0)) "$TOUCHED") B/key; non-2xx ${NON2XX_OF[many-keys]}, errors ${ERRORS_OF[many-keys]}"
add_row "4. rejection path (429 on one key)" "$REJECT" "$(median_ratio reject plain)" \
	"rounds $(ratio_range reject plain); ${REJECT_VS_ONEKEY}× scenario 2; non-2xx ${NON2XX_OF[reject]} of ${REQS[reject]}, errors ${ERRORS_OF[reject]}"
add_row "5. \`reverse_proxy\` to a \`respond\` site" "$PROXY" "$(median_ratio proxy plain)" \
	"rounds $(ratio_range proxy plain); a 429 is ${REJECT_VS_PROXY}× as fast; errors ${ERRORS_OF[proxy]}"

# 6. bytes per key, per algorithm (limit 10 per minute, every key sent to)
KEYROWS=()
for alg in $ALGORITHMS; do
	start_caddy "bytes-$alg" examples/bench/many-keys.Caddyfile \
		BENCH_ALGORITHM="$alg" BENCH_LIMIT=10 BENCH_WINDOW=1m
	run_wrk "bytes-$alg-warmup" "$WARMUP" -H "X-Key: warmup" "http://127.0.0.1:$PORT/"
	R0=$(rss_kb "$CADDY_PID")
	H0=$(live_heap)
	run_wrk "bytes-$alg" "$DURATION" -s "$LUA" "http://127.0.0.1:$PORT/"
	R1=$(rss_kb "$CADDY_PID")
	H1=$(live_heap)
	stop_caddy
	note "$alg: RSS +$(mb $((R1 - R0))) MB, live heap +$(((H1 - H0) / 1024)) KiB over $TOUCHED keys"
	KEYROWS+=("$(printf '| %s | %s | %s | %s | %s | %s |' "$alg" "$TOUCHED" \
		"$(awk -v r="$((RPS * DURATION))" -v k="$TOUCHED" 'BEGIN { if (k > 0) printf "%.1f", r / k; else print "n/a" }')" "$(mb $((R1 - R0)))" \
		"$(per_key $(((R1 - R0) * 1024)) "$TOUCHED")" "$(per_key $((H1 - H0)) "$TOUCHED")")")
done

# --- report ------------------------------------------------------------------
CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")
if [[ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null | head -1)" ]]; then REV="$REV (dirty)"; fi
GROWTH_MB=$(mb "$RSS_GROWTH_KB")

REPORT="$WORK/report.md"
{
	echo "## $(date -u '+%Y-%m-%d %H:%M UTC'), $REV"
	echo
	echo "$(nproc) cores ($CPU), Caddy $("$CADDY" version | awk '{print $1}'), wrk -t$THREADS -c$CONNECTIONS on the same machine."
	echo "Scenarios 1-5: ${DURATION}s each, interleaved in $ROUNDS rounds of ${SLICE}s; req/s is the mean,"
	echo "\"vs plain\" the median of the per-round ratios (their range in the notes)."
	echo
	echo "| scenario | req/s | vs plain | notes |"
	echo "| --- | ---: | ---: | --- |"
	printf '%s\n' "${ROWS[@]}"
	echo
	echo "Targets:"
	echo "- $KEYS keys at >= 0.90 of plain: ${MANY_RATIO} ($(at_least "$MANY_RATIO" 0.90))"
	echo "- $KEYS keys grow RSS by <= 16 MB: ${GROWTH_MB} MB ($(at_least 16 "$GROWTH_MB"))"
	echo "- rejection at least as fast as an allowed request: ${REJECT_VS_ONEKEY}× ($(at_least "$REJECT_VS_ONEKEY" 1.0))"
	echo "- a 429 cheaper than a proxied request: ${REJECT_VS_PROXY}× ($(at_least "$REJECT_VS_PROXY" 1.0))"
	echo
	echo "Bytes per key, end to end (limit 10 per 1m, $KEYS keys, ${DURATION}s of wrk; RSS includes the garbage"
	echo "collector's headroom, live heap is measured after a forced GC; see also"
	echo "\`go test -run '^\$' -bench BytesPerKey ./store/memory/\` for the store alone):"
	echo
	echo "| algorithm | keys | requests/key | RSS growth MB | RSS B/key | live heap B/key |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: |"
	printf '%s\n' "${KEYROWS[@]}"
	echo
} >"$REPORT"

cat "$REPORT"
if [[ -n "$OUT" ]]; then
	if [[ ! -f "$OUT" ]]; then
		mkdir -p "$(dirname "$OUT")"
		cat >"$OUT" <<'EOF'
# Benchmarks

Load benchmarks of the `rate_limit` handler, appended by `scripts/bench-wrk.sh`
(`make bench`). They run on a small shared machine where wrk and Caddy compete
for the same cores, so absolute requests/sec vary from run to run: compare the
ratios against plain Caddy within one section, not numbers across sections.

EOF
	fi
	cat "$REPORT" >>"$OUT"
	echo "bench-wrk: appended to $OUT" >&2
fi
