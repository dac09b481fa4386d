package redis

import (
	"embed"
	"fmt"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

// The Lua twins of the algorithms, with their shared helpers and the driver
// that decides a whole Take call. They are joined into one script, so one
// EVALSHA decides any mix of algorithms.
//
//go:embed lua/*.lua
var luaFiles embed.FS

// scriptFiles is the order the files are joined in: helpers first, the
// driver last.
var scriptFiles = []string{
	"lib.lua",
	"gcra.lua",
	"token_bucket.lua",
	"sliding_log.lua",
	"fixed_window.lua",
	"sliding_window.lua",
	"concurrency.lua",
	"take.lua",
}

// takeSource is the source of the take script.
var takeSource = buildScript()

// takeScript runs with EVALSHA and falls back to EVAL on NOSCRIPT.
var takeScript = goredis.NewScript(takeSource)

// The first two words of the take script's commands, boxed once, so that
// building a command boxes only its own keys and numbers.
var (
	evalShaName any = "evalsha"
	evalName    any = "eval"
	takeHash    any = takeScript.Hash()
	takeBody    any = takeSource
)

func buildScript() string {
	var b strings.Builder
	for _, name := range scriptFiles {
		src, err := luaFiles.ReadFile("lua/" + name)
		if err != nil {
			// The files are embedded at build time; a missing one is a
			// build mistake that every test catches.
			panic(fmt.Sprintf("redis store: embedded script %s: %v", name, err))
		}
		b.Write(src)
		b.WriteByte('\n')
	}
	return b.String()
}

// algID is an algorithm's number in the take script (ALG[id] in the Lua).
type algID int64

const (
	algGCRA algID = iota + 1
	algTokenBucket
	algSlidingLog
	algFixedWindow
	algSlidingWindow
	algConcurrency
)

// algNames are the algorithms' names, used as key suffixes.
var algNames = [...]string{
	algGCRA:          "gcra",
	algTokenBucket:   "token_bucket",
	algSlidingLog:    "sliding_log",
	algFixedWindow:   "fixed_window",
	algSlidingWindow: "sliding_window",
	algConcurrency:   "concurrency",
}

func (id algID) String() string { return algNames[id] }

// idOf returns the script's id for alg. Only the algorithms Ratewarden
// ships have a Lua twin; a third-party algorithm cannot run in Redis.
func idOf(alg algorithms.Algorithm) (algID, error) {
	switch alg.(type) {
	case algorithms.GCRA, *algorithms.GCRA:
		return algGCRA, nil
	case algorithms.TokenBucket, *algorithms.TokenBucket:
		return algTokenBucket, nil
	case algorithms.SlidingLog, *algorithms.SlidingLog:
		return algSlidingLog, nil
	case algorithms.FixedWindow, *algorithms.FixedWindow:
		return algFixedWindow, nil
	case algorithms.SlidingWindow, *algorithms.SlidingWindow:
		return algSlidingWindow, nil
	case algorithms.Concurrency, *algorithms.Concurrency:
		return algConcurrency, nil
	case nil:
		return 0, fmt.Errorf("no algorithm")
	}
	return 0, fmt.Errorf("algorithm %q has no Lua twin, so the redis store cannot run it", alg.Name())
}

// Flags of one request in the take script.
const (
	flagShadow       = 1
	flagPeek         = 2
	flagDefaultLease = 4
)

// argsPerRequest is how many ARGV entries each request takes.
const argsPerRequest = 6

// Where a command of the take script has its parts: EVALSHA, the hash, the
// number of keys, then the keys and the arguments.
const (
	cmdKeys   = 3
	cmdHeader = 3 // ARGV entries before the first request's
)

// commandLen is the length of the command of a call of n requests.
func commandLen(n int) int {
	return cmdKeys + n + cmdHeader + argsPerRequest*n
}

// appendCommand appends the start of the EVALSHA command of the take
// script with keys: every word before its arguments.
func appendCommand(cmd []any, keys []string) []any {
	cmd = append(cmd, evalShaName, takeHash, int64(len(keys)))
	for _, k := range keys {
		cmd = append(cmd, k)
	}
	return cmd
}

// asEval returns cmd, an EVALSHA command of the take script, as the EVAL
// command that sends the script itself.
func asEval(cmd []any) []any {
	ev := make([]any, len(cmd))
	copy(ev, cmd)
	ev[0], ev[1] = evalName, takeBody
	return ev
}

// mergeCommands returns the EVALSHA command that runs cmds, take script
// commands built by Store.eval, as one batch (see the end of lua/take.lua:
// its mode word, 'b1,2', gives each call's number of requests). It returns
// ok false when they cannot be merged: a dry run, or calls with different
// times or TTLs (only tests set those).
func mergeCommands(cmds [][]any) (merged []any, ok bool) {
	total, words := 0, 0
	var header []any
	var mode strings.Builder
	mode.Grow(2 * len(cmds))
	mode.WriteByte('b')
	for i, cmd := range cmds {
		n, isInt := cmd[2].(int64)
		if !isInt || len(cmd) != commandLen(int(n)) {
			return nil, false
		}
		h := cmd[cmdKeys+int(n) : cmdKeys+int(n)+cmdHeader]
		if dry, _ := h[2].(int); dry != 0 {
			return nil, false
		}
		if header == nil {
			header = h
		} else if h[0] != header[0] || h[1] != header[1] {
			return nil, false
		}
		if i > 0 {
			mode.WriteByte(',')
		}
		mode.WriteString(strconv.Itoa(int(n)))
		total += int(n)
		words += len(cmd)
	}
	merged = make([]any, 0, words)
	merged = append(merged, evalShaName, takeHash, int64(total))
	for _, cmd := range cmds {
		merged = append(merged, cmd[cmdKeys:cmdKeys+int(cmd[2].(int64))]...)
	}
	merged = append(merged, header[0], header[1], mode.String())
	for _, cmd := range cmds {
		merged = append(merged, cmd[cmdKeys+int(cmd[2].(int64))+cmdHeader:]...)
	}
	return merged, true
}

// appendArgs appends the script arguments of request r. The window is the
// policy's window in microseconds, at least 1, exactly as the Go transition
// computes it; the script picks the concurrency default lease from a flag.
func appendArgs(args []any, id algID, r *store.Request) []any {
	flags := int64(0)
	if r.Shadow {
		flags |= flagShadow
	}
	if r.Peek {
		flags |= flagPeek
	}
	if id == algConcurrency && r.Policy.Window <= 0 {
		flags |= flagDefaultLease
	}
	return append(args,
		int64(id),
		r.Policy.Limit,
		windowMicros(r.Policy),
		r.Policy.EffectiveBurst(),
		r.Cost,
		flags,
	)
}

// windowMicros mirrors the algorithms package: the window in microseconds,
// at least 1.
func windowMicros(p algorithms.Policy) int64 {
	return max(p.Window.Microseconds(), 1)
}
