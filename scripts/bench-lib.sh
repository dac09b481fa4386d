# Shell functions shared by the benchmark scripts (bench-wrk.sh,
# bench-redis.sh). Sourced, not run. The caller defines die, WORK, CADDY and
# the PIDS array; everything started here is recorded in PIDS so the
# caller's EXIT trap stops it by PID.

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

# free_port prints a loopback port nothing listens on, below Linux's
# ephemeral range (32768 and up) so no client socket holds it.
free_port() {
	local p
	while :; do
		p=$((10000 + RANDOM % 22000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

# start_caddy NAME CADDYFILE [VAR=VALUE...]: runs Caddy with the config and
# waits until it serves. Sets CADDY_PID, PORT and ADMIN. A start that loses a
# race for its port is tried again with new ports.
start_caddy() {
	local attempt
	for attempt in 1 2 3; do
		try_start_caddy "$@" && return 0
		grep -q "address already in use" "$WORK/$1.log" || break
	done
	cat "$WORK/$1.log" >&2
	die "caddy did not start in scenario $1"
}

try_start_caddy() {
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
		kill -0 "$CADDY_PID" 2>/dev/null || { wait "$CADDY_PID" 2>/dev/null || true; return 1; }
		if curl -fs -o /dev/null "http://127.0.0.1:$ADMIN/config/" &&
			curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then
			return 0
		fi
		sleep 0.1
	done
	stop_pid "$CADDY_PID"
	echo "caddy not ready after 15s" >>"$WORK/$name.log"
	return 1
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

note() { echo "  $*" >&2; }

# at_least A B prints "met" when A >= B, else "MISSED".
at_least() { if awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "n/a" && a + 0 >= b + 0) }'; then echo "met"; else echo "MISSED"; fi; }

# bench_workdir NAME makes the scratch directory $WORK, starts the PIDS list
# and sets the EXIT trap that stops every recorded process by PID.
bench_workdir() {
	WORK="$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")"
	PIDS=()
	trap cleanup EXIT
	trap 'exit 130' INT TERM
}

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
	rm -rf "$WORK"
}
