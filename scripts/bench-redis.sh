#!/usr/bin/env bash
# Load benchmark of the rate_limit handler with the Redis store, with wrk on
# loopback only (issue 3, "Performance").
#
#   scripts/bench-redis.sh          (or: make bench-redis)
#
# Starts its own redis-server (no persistence) and two Caddy processes on free
# loopback ports: plain Caddy (examples/bench/plain.Caddyfile) and Caddy with
# the Redis store, GCRA, one key per X-Key header value
# (examples/bench/redis-many-keys.Caddyfile, scripts/wrk-keys.lua sends
# BENCH_KEYS distinct values, every request allowed). In one run it measures,
# interleaved in rounds so load from elsewhere on the machine hits every
# scenario alike:
#
#   - req/s of plain and Redis-backed Caddy at c=64 and c=256, and their ratio;
#   - Redis round trips per decision at c=64, from the store's metrics
#     (caddy_rate_limit_store_round_trips_total, _store_batch_size) over
#     caddy_rate_limit_decisions_total, cross-checked on the Redis side with
#     INFO commandstats (evalsha + eval calls) and INFO stats
#     (total_reads_processed: socket reads, one or more per pipeline);
#   - the p99 latency Redis adds at c=64 (wrk --latency);
#   - the bound: req/s of a third Caddy with the same store pointed at
#     scripts/nullredis, a stand-in that answers every script call at once
#     without Lua or keys, so that the figure is what waiting on any network
#     answer costs on this machine (BENCH_NULL=0 skips it);
#   - the Redis ceiling: redis-benchmark EVALSHA of the store's own take
#     script (the embedded store/redis/lua/*.lua joined as script.go joins
#     them; the script checks its SHA1 against the one Caddy uses), pipelined
#     (-P 16, -c 64), GCRA with the same policy on random keys.
#
# Prints a table and appends a dated section to docs/benchmarks.md. Every
# process it starts is stopped by PID when it exits.
#
# Environment:
#   BENCH_DURATION     seconds of wrk per scenario, split over the rounds (default 20)
#   BENCH_ROUNDS       rounds the scenarios are interleaved in (default 5)
#   BENCH_THREADS      wrk threads (default 2)
#   BENCH_KEYS         distinct keys (default 100000)
#   BENCH_CEILING_N    EVALSHA calls per redis-benchmark round (default 100000)
#   BENCH_PIPELINE_WIDTH  the store's pipeline_width (default 2, the store's default)
#   BENCH_NULL         1 (default) to measure the stand-in bound too, 0 to skip it
#   BENCH_OUT          markdown file to append to (default docs/benchmarks.md; "" to skip)
#   CADDY              the Caddy binary (default ./caddy, built with make build if missing)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DURATION="${BENCH_DURATION:-20}"
THREADS="${BENCH_THREADS:-2}"
KEYS="${BENCH_KEYS:-100000}"
ROUNDS="${BENCH_ROUNDS:-5}"
CEILING_N="${BENCH_CEILING_N:-100000}"
PIPELINE_WIDTH="${BENCH_PIPELINE_WIDTH:-2}"
NULL="${BENCH_NULL:-1}"
OUT="${BENCH_OUT-docs/benchmarks.md}"
CADDY="${CADDY:-$ROOT/caddy}"
CONNS=(64 256)
export BENCH_THREADS="$THREADS" BENCH_KEYS="$KEYS"

die() { echo "bench-redis: $*" >&2; exit 1; }
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

for n in "$DURATION" "$THREADS" "$KEYS" "$ROUNDS" "$CEILING_N" "$PIPELINE_WIDTH"; do
	[[ "$n" =~ ^[1-9][0-9]*$ ]] || die "BENCH_DURATION, BENCH_ROUNDS, BENCH_THREADS, BENCH_KEYS, BENCH_CEILING_N and BENCH_PIPELINE_WIDTH must be positive integers"
done
[[ "$NULL" == 0 || "$NULL" == 1 ]] || die "BENCH_NULL must be 0 or 1"
((DURATION <= 600)) || die "BENCH_DURATION is capped at 600 seconds"
((ROUNDS <= 50)) || die "BENCH_ROUNDS is capped at 50"
((CEILING_N <= 10000000)) || die "BENCH_CEILING_N is capped at 10000000"
((ROUNDS <= DURATION)) || ROUNDS=$DURATION
SLICE=$((DURATION / ROUNDS))
# redis-benchmark gets as long as a wrk slice, plus slack, before it is stopped.
CEILING_TIMEOUT=$((SLICE * 4 + 30))

# --- tools -------------------------------------------------------------------
missing=()
for pair in wrk:wrk curl:curl redis-server:redis-server redis-cli:redis-tools redis-benchmark:redis-tools sha1sum:coreutils; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
done
if ((${#missing[@]})); then
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
		echo "installing: ${missing[*]}" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
			{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
	else
		die "missing tools: install the Debian packages: ${missing[*]} (apt-get install ${missing[*]})"
	fi
fi
if [[ "$CADDY" == "$ROOT/caddy" ]]; then
	# Rebuild when missing or older than the sources (a stale binary may lack
	# the store's metrics).
	timeout 900 make -q -C "$ROOT" build >/dev/null 2>&1 || timeout 900 make -C "$ROOT" build >&2
fi
[[ -x "$CADDY" ]] || die "CADDY=$CADDY is not an executable"
"$CADDY" list-modules 2>/dev/null | grep -x 'rate_limit.stores.redis' >/dev/null ||
	die "$CADDY has no rate_limit.stores.redis module: rebuild it (make build)"

# --- processes ---------------------------------------------------------------
bench_workdir bench-redis

rcli() { timeout 10 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

# start_redis starts redis-server without persistence on a free loopback
# port and waits for PING. Sets REDIS_PORT and REDIS_PID.
start_redis() {
	local attempt i
	for attempt in 1 2 3; do
		REDIS_PORT=$(free_port)
		redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --protected-mode yes \
			--save '' --appendonly no --dir "$WORK" --daemonize no \
			--logfile "$WORK/redis.log" >/dev/null 2>&1 &
		REDIS_PID=$!
		PIDS+=("$REDIS_PID")
		for ((i = 0; i < 50; i++)); do
			kill -0 "$REDIS_PID" 2>/dev/null || break
			[[ "$(rcli PING 2>/dev/null)" == PONG ]] && return 0
			sleep 0.1
		done
		stop_pid "$REDIS_PID"
	done
	cat "$WORK/redis.log" >&2 || true
	die "redis-server did not start"
}

# start_null builds and starts scripts/nullredis on a free loopback port and
# waits for PING. Sets NULL_PORT.
start_null() {
	local attempt i pid
	timeout 600 go build -o "$WORK/nullredis" ./scripts/nullredis || die "could not build scripts/nullredis"
	for attempt in 1 2 3; do
		NULL_PORT=$(free_port)
		"$WORK/nullredis" -addr "127.0.0.1:$NULL_PORT" >"$WORK/nullredis.log" 2>&1 &
		pid=$!
		PIDS+=("$pid")
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			[[ "$(timeout 10 redis-cli -h 127.0.0.1 -p "$NULL_PORT" PING 2>/dev/null)" == PONG ]] && return 0
			sleep 0.1
		done
		stop_pid "$pid"
	done
	cat "$WORK/nullredis.log" >&2 || true
	die "scripts/nullredis did not start"
}

# to_ms converts one of wrk's durations (123us, 1.5ms, 2.00s, 1m) to ms.
to_ms() {
	awk -v d="$1" 'BEGIN {
		if (d ~ /us$/) { sub(/us$/, "", d); v = d / 1e3 } else if (d ~ /ms$/) { sub(/ms$/, "", d); v = d }
		else if (d ~ /m$/) { sub(/m$/, "", d); v = d * 60e3 } else { sub(/s$/, "", d); v = d * 1e3 }
		printf "%.3f", v }'
}

# run_wrk NAME SECONDS CONNECTIONS [wrk args...] URL: runs wrk with
# --latency and sets RPS, REQUESTS, ELAPSED (seconds), NON2XX, ERRORS,
# P50 and P99 (ms), and with scripts/wrk-keys.lua TOUCHED and SENT_MIN.
run_wrk() {
	local name=$1 secs=$2 conns=$3 f
	shift 3
	f="$WORK/$name.wrk"
	timeout $((secs + 30)) wrk -t"$THREADS" -c"$conns" -d"${secs}s" --latency "$@" >"$f" 2>&1 ||
		{ cat "$f" >&2; die "wrk failed in scenario $name"; }
	RPS=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$f")
	NON2XX=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$f")
	NON2XX=${NON2XX:-0}
	ERRORS=$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$f")
	ERRORS=${ERRORS:-0}
	TOUCHED=$(awk '/^keys_touched/ {print $2}' "$f")
	SENT_MIN=$(awk '/^sent_min/ {print $2}' "$f")
	REQUESTS=$(awk '/ requests in / {print $1}' "$f")
	ELAPSED=$(awk '/ requests in / { d = $4; sub(/,$/, "", d); print d }' "$f")
	ELAPSED=$(awk -v ms="$(to_ms "$ELAPSED")" 'BEGIN { print ms / 1e3 }')
	P50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$f")")
	P99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$f")")
	[[ -n "$RPS" ]] || { cat "$f" >&2; die "no Requests/sec in wrk output for $name"; }
}

# metric NAME: the sum over label sets of a counter (or a histogram's _sum
# or _count) on the Redis-backed Caddy's /metrics.
metric() {
	curl -fs "http://127.0.0.1:$REDIS_ADMIN/metrics" |
		awk -v m="$1" 'index($0, m "{") == 1 || index($0, m " ") == 1 { s += $NF } END { printf "%.0f", s }'
}

# redis_stat FIELD: a field of INFO commandstats/stats, e.g. cmdstat_evalsha
# (its calls) or total_reads_processed.
redis_stat() {
	rcli INFO all | tr -d '\r' | awk -F'[:=,]' -v f="$1" '$1 == f { print ($2 == "calls" ? $3 : $2) + 0; found = 1 } END { if (!found) print 0 }'
}

# snapshot PREFIX: records the counters the round-trip figures come from.
COUNTERS=(decisions round_trips batch_sum batch_count fallbacks store_errors evalsha eval reads)
snapshot() {
	local p=$1
	SNAP[$p,decisions]=$(metric caddy_rate_limit_decisions_total)
	SNAP[$p,round_trips]=$(metric caddy_rate_limit_store_round_trips_total)
	SNAP[$p,batch_sum]=$(metric caddy_rate_limit_store_batch_size_sum)
	SNAP[$p,batch_count]=$(metric caddy_rate_limit_store_batch_size_count)
	SNAP[$p,fallbacks]=$(metric caddy_rate_limit_store_fallback_decisions_total)
	SNAP[$p,store_errors]=$(metric caddy_rate_limit_store_errors_total)
	SNAP[$p,evalsha]=$(redis_stat cmdstat_evalsha)
	SNAP[$p,eval]=$(redis_stat cmdstat_eval)
	SNAP[$p,reads]=$(redis_stat total_reads_processed)
}

ratio3() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }
at_most() { if awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "n/a" && a + 0 <= b + 0) }'; then echo "met"; else echo "MISSED"; fi; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
range() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s–%s", lo, hi }'; }

# per_round KIND A B: per-round values of A/B (ratio) or A-B (diff) of the
# round-indexed array VAL_AT, one a line.
per_round() {
	local r
	for ((r = 0; r < ROUNDS; r++)); do
		case $1 in
		ratio) ratio "${VAL_AT[$2,$r]}" "${VAL_AT[$3,$r]}" ;;
		diff) awk -v a="${VAL_AT[$2,$r]}" -v b="${VAL_AT[$3,$r]}" 'BEGIN { printf "%.2f", a - b }' ;;
		esac
		echo
	done
}

echo "bench-redis: $CADDY, ${DURATION}s per wrk scenario ($ROUNDS rounds of ${SLICE}s), wrk -t$THREADS -c${CONNS[*]}, $KEYS keys" >&2

# --- setup -------------------------------------------------------------------
start_redis
# The store's take script, joined as store/redis/script.go joins it (each
# file followed by a newline), loaded before Caddy starts: if its SHA1 is
# the one Caddy computes, Caddy's EVALSHA never misses (no NOSCRIPT, no EVAL).
TAKE="$WORK/take.lua"
for f in lib gcra token_bucket sliding_log fixed_window sliding_window concurrency take; do
	cat "store/redis/lua/$f.lua"
	echo
done >"$TAKE"
SHA=$(sha1sum "$TAKE" | awk '{print $1}')
[[ "$(rcli -x SCRIPT LOAD <"$TAKE")" == "$SHA" ]] || die "SCRIPT LOAD of the take script did not return its SHA1"

declare -A URL_OF ADMIN_OF VAL_AT REQS SECS NON2XX_OF ERRORS_OF SNAP DELTA RATIO
start_caddy plain examples/bench/plain.Caddyfile
URL_OF[plain]="http://127.0.0.1:$PORT/"
start_caddy redis examples/bench/redis-many-keys.Caddyfile BENCH_REDIS_PORT="$REDIS_PORT" BENCH_PIPELINE_WIDTH="$PIPELINE_WIDTH"
URL_OF[redis]="http://127.0.0.1:$PORT/"
REDIS_ADMIN=$ADMIN
SCENARIOS=(plain-64 redis-64 plain-256 redis-256 ceiling)
KINDS=(redis)
if [[ "$NULL" == 1 ]]; then
	start_null
	start_caddy null examples/bench/redis-many-keys.Caddyfile BENCH_REDIS_PORT="$NULL_PORT" BENCH_PIPELINE_WIDTH="$PIPELINE_WIDTH"
	URL_OF[null]="http://127.0.0.1:$PORT/"
	SCENARIOS=(plain-64 redis-64 null-64 plain-256 redis-256 null-256 ceiling)
	KINDS=(redis null)
	BENCH_KEY_START=0 run_wrk null-warmup 1 64 -s "$ROOT/scripts/wrk-keys.lua" "${URL_OF[null]}"
fi

LUA="$ROOT/scripts/wrk-keys.lua"
run_wrk plain-warmup 1 64 "${URL_OF[plain]}"
BENCH_KEY_START=0 run_wrk redis-warmup 1 64 -s "$LUA" "${URL_OF[redis]}"
KEY_START=$SENT_MIN
NOSCRIPT_WARMUP=$(redis_stat cmdstat_eval)

# --- rounds ------------------------------------------------------------------
# Each round visits every scenario once, in an order rotated by one each
# round. The ceiling runs redis-benchmark against the same Redis while no
# wrk runs (its keys have their own prefix).
for c in "${COUNTERS[@]}"; do DELTA[$c]=0; done
TOUCHED_MAX=0
for ((r = 0; r < ROUNDS; r++)); do
	for ((i = 0; i < ${#SCENARIOS[@]}; i++)); do
		s=${SCENARIOS[(i + r) % ${#SCENARIOS[@]}]}
		case $s in
		ceiling)
			f="$WORK/ceiling-$r.csv"
			timeout "$CEILING_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -n "$CEILING_N" -P 16 -c 64 \
				-r "$KEYS" --csv EVALSHA "$SHA" 1 'ceiling:{z:__rand_int__}:gcra' \
				'' 1 0 1 1000000000 1000000 1000000000 1 0 >"$f" 2>&1 ||
				{ cat "$f" >&2; die "redis-benchmark failed"; }
			grep -q 'Error\|ERR' "$f" && { cat "$f" >&2; die "redis-benchmark: the script returned an error"; }
			VAL_AT[ceiling,$r]=$(awk -F'","' 'NR == 2 { print $2 + 0 }' "$f")
			[[ -n "${VAL_AT[ceiling,$r]}" ]] || { cat "$f" >&2; die "no rps in redis-benchmark output"; }
			continue
			;;
		esac
		kind=${s%-*}
		conns=${s#*-}
		if [[ $kind == redis ]]; then
			[[ $conns == 64 ]] && snapshot before
			BENCH_KEY_START=$KEY_START run_wrk "$s-$r" "$SLICE" "$conns" -s "$LUA" "${URL_OF[redis]}"
			KEY_START=$SENT_MIN
			((TOUCHED > TOUCHED_MAX)) && TOUCHED_MAX=$TOUCHED
			if [[ $conns == 64 ]]; then
				snapshot after
				for c in "${COUNTERS[@]}"; do
					DELTA[$c]=$((${DELTA[$c]} + ${SNAP[after,$c]} - ${SNAP[before,$c]}))
				done
			fi
		elif [[ $kind == null ]]; then
			BENCH_KEY_START=0 run_wrk "$s-$r" "$SLICE" "$conns" -s "$LUA" "${URL_OF[null]}"
		else
			run_wrk "$s-$r" "$SLICE" "$conns" "${URL_OF[plain]}"
		fi
		# Only 2xx responses count: a 503 from on_failure deny is no decision.
		VAL_AT[$s,$r]=$(awk -v n="$REQUESTS" -v bad="$NON2XX" -v t="$ELAPSED" 'BEGIN { if (t > 0) printf "%.0f", (n - bad) / t; else print 0 }')
		VAL_AT[$s-all,$r]=$RPS
		VAL_AT[$s-p50,$r]=$P50
		VAL_AT[$s-p99,$r]=$P99
		REQS[$s]=$((${REQS[$s]:-0} + REQUESTS))
		SECS[$s]=$(awk -v a="${SECS[$s]:-0}" -v b="$ELAPSED" 'BEGIN { print a + b }')
		NON2XX_OF[$s]=$((${NON2XX_OF[$s]:-0} + NON2XX))
		ERRORS_OF[$s]=$((${ERRORS_OF[$s]:-0} + ERRORS))
	done
	note "round $((r + 1))/$ROUNDS: $(for s in "${SCENARIOS[@]}"; do printf '%s %s  ' "$s" "${VAL_AT[$s,$r]}"; done)"
done
REDIS_KEYS_NOW=$(rcli DBSIZE)
REDIS_MEM=$(rcli INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory_human" { print $2 }')

# --- figures -----------------------------------------------------------------
# mean_rps S: 2xx responses per second over every slice of S (all
# responses per second with a second argument).
mean_rps() {
	local bad=${NON2XX_OF[$1]}
	[[ -n "${2:-}" ]] && bad=0
	awk -v n="${REQS[$1]}" -v bad="$bad" -v t="${SECS[$1]}" 'BEGIN { if (t > 0) printf "%.0f", (n - bad) / t; else print 0 }'
}
med() { local r; for ((r = 0; r < ROUNDS; r++)); do echo "${VAL_AT[$1,$r]}"; done | median; }
rng() { local r; for ((r = 0; r < ROUNDS; r++)); do echo "${VAL_AT[$1,$r]}"; done | range; }

ROWS=()
for c in "${CONNS[@]}"; do
	PLAIN_RPS[$c]=$(mean_rps "plain-$c")
	REDIS_RPS[$c]=$(mean_rps "redis-$c")
	RATIO[$c]=$(per_round ratio "redis-$c" "plain-$c" | median)
	ROWS+=("$(printf '| plain `respond` | %s | %s | 1.00 | %s | %s | errors %s |' "$c" "${PLAIN_RPS[$c]}" \
		"$(med "plain-$c-p50")" "$(med "plain-$c-p99")" "${ERRORS_OF[plain-$c]}")")
	for k in "${KINDS[@]}"; do
		label="Redis store, $KEYS keys, gcra"
		[[ $k == null ]] && label="same store, scripts/nullredis stand-in"
		RATIO[$k-$c]=$(per_round ratio "$k-$c" "plain-$c" | median)
		ROWS+=("$(printf '| %s | %s | %s | %s | %s | %s | rounds %s; non-2xx %s of %s (%s/s counting them), errors %s |' "$label" "$c" \
			"$(mean_rps "$k-$c")" "${RATIO[$k-$c]}" "$(med "$k-$c-p50")" "$(med "$k-$c-p99")" \
			"$(per_round ratio "$k-$c" "plain-$c" | range)" "${NON2XX_OF[$k-$c]}" "${REQS[$k-$c]}" \
			"$(mean_rps "$k-$c" all)" "${ERRORS_OF[$k-$c]}")")
	done
done
ADDED_P99=$(per_round diff redis-64-p99 plain-64-p99 | median)
ADDED_P99_RANGE=$(per_round diff redis-64-p99 plain-64-p99 | range)
ADDED_P50=$(per_round diff redis-64-p50 plain-64-p50 | median)
RT_PER_DECISION=$(ratio3 "${DELTA[round_trips]}" "${DELTA[decisions]}")
MEAN_BATCH=$(ratio "${DELTA[batch_sum]}" "${DELTA[batch_count]}")
SCRIPT_CALLS=$((${DELTA[evalsha]} + ${DELTA[eval]}))
CALLS_PER_DECISION=$(ratio3 "$SCRIPT_CALLS" "${DELTA[decisions]}")
READS_PER_DECISION=$(ratio3 "${DELTA[reads]}" "${DELTA[decisions]}")
CEILING=$(med ceiling)
CEILING=${CEILING%.*}
BEST_RPS=$(printf '%s\n' "${REDIS_RPS[@]}" | sort -g | tail -1)
OF_CEILING_64=$(ratio "${REDIS_RPS[64]}" "$CEILING")
OF_CEILING_256=$(ratio "${REDIS_RPS[256]}" "$CEILING")

# --- report ------------------------------------------------------------------
CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")
if [[ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null | head -1)" ]]; then REV="$REV (dirty)"; fi
LOAD=$(awk '{print $1, $2, $3}' /proc/loadavg)

REPORT="$WORK/report.md"
{
	echo "## $(date -u '+%Y-%m-%d %H:%M UTC'), $REV: Redis store"
	echo
	echo "$(nproc) cores ($CPU), Caddy $("$CADDY" version | awk '{print $1}'), $(redis-server --version | awk '{print $1, $3}' | tr -d 'v=' | sed 's/ / /'),"
	echo "wrk -t$THREADS and redis-server on the same machine (load average at the end: $LOAD)."
	echo "\`scripts/bench-redis.sh\`: each wrk scenario ${DURATION}s, interleaved with the others in $ROUNDS rounds of ${SLICE}s;"
	echo "2xx/s is the mean rate of 2xx responses (a 503 from \`on_failure deny\` after a Redis error, timeout or"
	echo "open breaker is no decision, so it does not count), \"vs plain\" the median of the per-round ratios of"
	echo "2xx/s, latencies the median of the per-round percentiles of every response (ms). Redis store: standalone,"
	echo "settings (timeout 50ms, breaker 5 failures / 5s cooldown, pipelining batch 128 width $PIPELINE_WIDTH), \`on_failure deny\`."
	echo
	echo "| scenario | c | 2xx/s | vs plain | p50 ms | p99 ms | notes |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | --- |"
	printf '%s\n' "${ROWS[@]}"
	echo
	echo "Round trips at c=64 (sum over the $ROUNDS c=64 slices): ${DELTA[decisions]} decisions,"
	echo "${DELTA[round_trips]} round trips (\`caddy_rate_limit_store_round_trips_total\`), mean batch ${MEAN_BATCH}"
	echo "(\`caddy_rate_limit_store_batch_size\` sum/count). Redis side: ${SCRIPT_CALLS} script calls"
	echo "(\`cmdstat_evalsha\` ${DELTA[evalsha]} + \`cmdstat_eval\` ${DELTA[eval]}; ${CALLS_PER_DECISION} per decision: the store merges a pipeline's decisions into one script call), ${DELTA[reads]} socket reads"
	echo "(\`total_reads_processed\`; ${READS_PER_DECISION} per decision, an upper bound on pipelines received)."
	echo "Store errors (failures and timeouts) ${DELTA[store_errors]}, fallback (\`on_failure\`) decisions ${DELTA[fallbacks]},"
	echo "both at c=64. EVAL calls after NOSCRIPT before the rounds: ${NOSCRIPT_WARMUP}."
	echo "Redis at the end: ${REDIS_KEYS_NOW} keys, ${REDIS_MEM} used (keys touched by one wrk slice: up to $TOUCHED_MAX)."
	echo
	echo "Redis ceiling: \`redis-benchmark -P 16 -c 64 -n $CEILING_N -r $KEYS EVALSHA <take script> 1 <random key>\`,"
	echo "the store's own take script (SHA1 ${SHA:0:12}…, the one Caddy runs) with the same GCRA policy, once per round:"
	echo "median ${CEILING} decisions/s (rounds $(rng ceiling)). Caddy with Redis reached ${OF_CEILING_64} of it at c=64"
	echo "and ${OF_CEILING_256} at c=256 (while wrk and Caddy share the cores with Redis; redis-benchmark had them to itself)."
	echo
	echo "Targets (issue 3):"
	echo "- throughput >= 0.75 of plain, $KEYS keys, gcra: c=64 ${RATIO[64]} ($(at_least "${RATIO[64]}" 0.75)), c=256 ${RATIO[256]} ($(at_least "${RATIO[256]}" 0.75))"
	echo "- round trips per decision <= 0.2 at c=64: ${RT_PER_DECISION} ($(at_most "$RT_PER_DECISION" 0.2))"
	echo "- added p99 latency <= 2 ms at c=64: ${ADDED_P99} ms, rounds ${ADDED_P99_RANGE} ($(at_most "$ADDED_P99" 2)); added p50 ${ADDED_P50} ms"
	echo "- decisions/s vs the Redis ceiling (reported, no target): ${OF_CEILING_64} (c=64), ${OF_CEILING_256} (c=256)"
	if [[ "$NULL" == 1 ]]; then
		echo "- bound (reported, no target): the same store against scripts/nullredis, which answers every"
		echo "  script call at once with no Lua and no keys: ${RATIO[null-64]} of plain at c=64, ${RATIO[null-256]} at c=256"
	fi
	echo
} >"$REPORT"

cat "$REPORT"
if [[ -n "$OUT" ]]; then
	if [[ ! -f "$OUT" ]]; then
		mkdir -p "$(dirname "$OUT")"
		printf '# Benchmarks\n\n' >"$OUT"
	fi
	cat "$REPORT" >>"$OUT"
	echo "bench-redis: appended to $OUT" >&2
fi
