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
OUT="${BENCH_OUT-docs/benchmarks.md}"
CADDY="${CADDY:-$ROOT/caddy}"
export BENCH_THREADS="$THREADS" BENCH_KEYS="$KEYS"

die() { echo "bench-wrk: $*" >&2; exit 1; }

for n in "$DURATION" "$THREADS" "$CONNECTIONS" "$KEYS"; do
	[[ "$n" =~ ^[1-9][0-9]*$ ]] || die "BENCH_DURATION, BENCH_THREADS, BENCH_CONNECTIONS and BENCH_KEYS must be positive integers"
done
((DURATION <= 600)) || die "BENCH_DURATION is capped at 600 seconds"

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
WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-wrk.XXXXXX")"
PIDS=()

stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port prints a loopback port nothing listens on.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 30000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

# start_caddy NAME CADDYFILE [VAR=VALUE...]: runs Caddy with the config and
# waits until it serves. Sets CADDY_PID, PORT and ADMIN.
start_caddy() {
	local name=$1 config=$2 i
	shift 2
	PORT=$(free_port)
	ADMIN=$(free_port)
	while [[ "$ADMIN" == "$PORT" ]]; do ADMIN=$(free_port); done
	env BENCH_PORT="$PORT" BENCH_ADMIN_PORT="$ADMIN" "$@" \
		HOME="$WORK" XDG_CONFIG_HOME="$WORK/config" XDG_DATA_HOME="$WORK/data" \
		"$CADDY" run --adapter caddyfile --config "$config" >"$WORK/$name.log" 2>&1 &
	CADDY_PID=$!
	PIDS+=("$CADDY_PID")
	for ((i = 0; i < 150; i++)); do
		if ! kill -0 "$CADDY_PID" 2>/dev/null; then
			cat "$WORK/$name.log" >&2
			die "caddy exited while starting scenario $name"
		fi
		if curl -fs -o /dev/null "http://127.0.0.1:$ADMIN/config/" &&
			curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then
			return 0
		fi
		sleep 0.1
	done
	cat "$WORK/$name.log" >&2
	die "caddy not ready after 15s in scenario $name"
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# live_heap prints the heap in use after a forced collection, in bytes
# (pprof's heap endpoint runs a GC with gc=1; expvar then reads memstats).
live_heap() {
	curl -fs -o /dev/null "http://127.0.0.1:$ADMIN/debug/pprof/heap?gc=1"
	curl -fs "http://127.0.0.1:$ADMIN/debug/vars" | grep -o '"HeapAlloc": *[0-9]*' | grep -o '[0-9]*$'
}

# run_wrk NAME SECONDS [wrk args...] URL: runs wrk and sets RPS, NON2XX
# (responses that were not 2xx/3xx), ERRORS (socket errors) and TOUCHED.
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
	[[ -n "$RPS" ]] || { cat "$f" >&2; die "no Requests/sec in wrk output for $name"; }
}

stop_caddy() {
	stop_pid "$CADDY_PID"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
mb() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }
per_key() { awk -v bytes="$1" -v keys="$2" 'BEGIN { if (keys > 0) printf "%.0f", bytes / keys; else print "n/a" }'; }
verdict() { if awk -v ok="$1" 'BEGIN { exit !(ok) }'; then echo "met"; else echo "MISSED"; fi; }

WARMUP=1
LUA="$ROOT/scripts/wrk-keys.lua"
ROWS=()
add_row() { ROWS+=("$(printf '| %s | %s | %s | %s |' "$1" "$2" "$3" "$4")"); }
note() { echo "  $*" >&2; }

echo "bench-wrk: $CADDY, ${DURATION}s per scenario, wrk -t$THREADS -c$CONNECTIONS, $KEYS keys" >&2

# 1. plain
start_caddy plain examples/bench/plain.Caddyfile
run_wrk plain-warmup "$WARMUP" "http://127.0.0.1:$PORT/"
run_wrk plain "$DURATION" "http://127.0.0.1:$PORT/"
stop_caddy
PLAIN=$RPS
note "plain: $PLAIN req/s"
add_row "1. plain \`respond\` (no rate_limit)" "$PLAIN" "1.00" "errors $ERRORS"

# 2. one key, all allowed
start_caddy one-key examples/bench/one-key.Caddyfile
run_wrk one-key-warmup "$WARMUP" "http://127.0.0.1:$PORT/"
run_wrk one-key "$DURATION" "http://127.0.0.1:$PORT/"
stop_caddy
ONEKEY=$RPS
note "one key: $ONEKEY req/s"
add_row "2. one key, all allowed (gcra)" "$ONEKEY" "$(ratio "$ONEKEY" "$PLAIN")" "non-2xx $NON2XX, errors $ERRORS"

# 3. many keys, GCRA, all allowed; memory growth
start_caddy many-keys examples/bench/many-keys.Caddyfile BENCH_ALGORITHM=gcra
run_wrk many-keys-warmup "$WARMUP" "http://127.0.0.1:$PORT/"
RSS0=$(rss_kb "$CADDY_PID")
HEAP0=$(live_heap)
run_wrk many-keys "$DURATION" -s "$LUA" "http://127.0.0.1:$PORT/"
RSS1=$(rss_kb "$CADDY_PID")
HEAP1=$(live_heap)
stop_caddy
MANY=$RPS
MANY_RATIO=$(ratio "$MANY" "$PLAIN")
RSS_GROWTH_KB=$((RSS1 - RSS0))
note "many keys: $MANY req/s, RSS +$(mb "$RSS_GROWTH_KB") MB over $TOUCHED keys"
add_row "3. $KEYS keys (gcra), all allowed" "$MANY" "$MANY_RATIO" \
	"keys $TOUCHED; RSS +$(mb "$RSS_GROWTH_KB") MB ($(per_key $((RSS_GROWTH_KB * 1024)) "$TOUCHED") B/key); live heap $(per_key $((HEAP1 - HEAP0)) "$TOUCHED") B/key; non-2xx $NON2XX"

# 4. rejection path
start_caddy reject examples/bench/reject.Caddyfile
run_wrk reject-warmup "$WARMUP" "http://127.0.0.1:$PORT/"
run_wrk reject "$DURATION" "http://127.0.0.1:$PORT/"
stop_caddy
REJECT=$RPS
REJECT_VS_ONEKEY=$(ratio "$REJECT" "$ONEKEY")
note "rejection: $REJECT req/s"
add_row "4. rejection path (429 on one key)" "$REJECT" "$(ratio "$REJECT" "$PLAIN")" \
	"${REJECT_VS_ONEKEY}× scenario 2; non-2xx $NON2XX of all; errors $ERRORS"

# 5. proxied request
UPSTREAM=$(free_port)
start_caddy proxy examples/bench/proxy.Caddyfile BENCH_UPSTREAM_PORT="$UPSTREAM"
run_wrk proxy-warmup "$WARMUP" "http://127.0.0.1:$PORT/"
run_wrk proxy "$DURATION" "http://127.0.0.1:$PORT/"
stop_caddy
PROXY=$RPS
note "proxied: $PROXY req/s"
add_row "5. \`reverse_proxy\` to a \`respond\` site" "$PROXY" "$(ratio "$PROXY" "$PLAIN")" \
	"a 429 is $(ratio "$REJECT" "$PROXY")× as fast; errors $ERRORS"

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
		"$(per_key "$((RPS * DURATION))" "$TOUCHED")" "$(mb $((R1 - R0)))" \
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
	echo "$(nproc) cores ($CPU), $($CADDY version | awk '{print $1}'), wrk -t$THREADS -c$CONNECTIONS, ${DURATION}s per scenario, wrk and Caddy on the same machine."
	echo
	echo "| scenario | req/s | vs plain | notes |"
	echo "| --- | ---: | ---: | --- |"
	printf '%s\n' "${ROWS[@]}"
	echo
	echo "Targets:"
	echo "- $KEYS keys at >= 0.90 of plain: ${MANY_RATIO} ($(verdict "$MANY_RATIO >= 0.90"))"
	echo "- $KEYS keys grow RSS by <= 16 MB: ${GROWTH_MB} MB ($(verdict "$GROWTH_MB <= 16"))"
	echo "- rejection at least as fast as an allowed request: ${REJECT_VS_ONEKEY}× ($(verdict "$REJECT_VS_ONEKEY >= 1.0"))"
	echo "- a 429 cheaper than a proxied request: $(ratio "$REJECT" "$PROXY")× ($(verdict "$REJECT > $PROXY"))"
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
