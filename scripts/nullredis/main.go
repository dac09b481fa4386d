// Command nullredis is a stand-in for Redis that the load benchmark
// (scripts/bench-redis.sh) points a second Caddy at, to measure what waiting
// on a network answer costs when the answer itself costs nothing.
//
// It speaks RESP through github.com/tidwall/redcon and answers every
// EVALSHA or EVAL of the store's take script at once, allowing every
// request, in the shape the script replies (four integers per request, and
// a batch of merged calls as one entry per call). It keeps no keys and runs
// no Lua, so Caddy's rate with it is the most a Redis-backed limiter on this
// client can reach on the same machine, whatever the script costs. Every
// other command gets "+OK" (PING gets "+PONG"; HELLO is refused, so clients
// fall back to RESP2).
//
// It is a benchmark tool, never a store: it decides nothing.
//
//	go run ./scripts/nullredis -addr 127.0.0.1:7400
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/tidwall/redcon"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "loopback address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	// The benchmark reads the port from this line.
	fmt.Fprintln(os.Stdout, "listening", ln.Addr())
	log.Fatal(redcon.Serve(ln, handle, nil, nil))
}

// handle answers one command; see the package comment.
func handle(conn redcon.Conn, cmd redcon.Command) {
	switch strings.ToLower(string(cmd.Args[0])) {
	case "evalsha", "eval":
		answerTake(conn, cmd.Args)
	case "ping":
		conn.WriteString("PONG")
	case "hello":
		conn.WriteError("ERR unknown command 'HELLO'")
	default:
		conn.WriteString("OK")
	}
}

// answerTake replies to a take script call (store/redis/lua/take.lua):
// EVALSHA sha numkeys key... time min_ttl mode request-args... where mode is
// '0' or '1' for one call of numkeys requests, or 'b' and each merged
// call's number of requests ('b1,2,1').
func answerTake(conn redcon.Conn, args [][]byte) {
	if len(args) < 3 {
		conn.WriteError("ERR wrong number of arguments")
		return
	}
	keys, err := strconv.Atoi(string(args[2]))
	mode := 3 + keys + 2
	if err != nil || keys < 1 || len(args) <= mode {
		conn.WriteError("ERR nullredis: not a take script call")
		return
	}
	m := string(args[mode])
	if !strings.HasPrefix(m, "b") {
		allowAll(conn, keys)
		return
	}
	sizes := strings.Split(m[1:], ",")
	conn.WriteArray(len(sizes))
	for _, s := range sizes {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			conn.WriteError("ERR nullredis: bad batch " + m)
			continue
		}
		allowAll(conn, n)
	}
}

// allowAll writes one call's reply: n requests, each allowed with 999 left,
// no retry and a reset after 1ms.
func allowAll(conn redcon.Conn, n int) {
	conn.WriteArray(4 * n)
	for range n {
		conn.WriteInt(1)
		conn.WriteInt(999)
		conn.WriteInt(0)
		conn.WriteInt(1000)
	}
}
