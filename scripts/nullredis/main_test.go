package main

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tidwall/redcon"

	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
	redisstore "github.com/ratewarden/ratewarden/store/redis"
)

// serve starts the stand-in on a loopback port and returns a client of it.
func serve(t *testing.T) *goredis.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = redcon.Serve(ln, handle, nil, nil) }()
	t.Cleanup(func() { _ = ln.Close() })
	c := goredis.NewClient(&goredis.Options{Addr: ln.Addr().String()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func gcra(key byte, limit int64) store.Request {
	return store.Request{Zone: "z", Key: store.Key{key}, Algorithm: algorithms.GCRA{},
		Policy: algorithms.Policy{Limit: limit, Window: time.Second}, Cost: 1}
}

// The store must take the stand-in's replies as decisions, one call at a
// time and in merged batches, or the benchmark would measure errors: every
// request is allowed, far past its limit, and no call fails.
func TestStoreDecidesThroughTheStandIn(t *testing.T) {
	c := serve(t)
	s := redisstore.New(c, redisstore.Options{Name: "null", OnFailure: "deny"})
	out := make([]algorithms.Decision, 2)
	if err := s.Take(context.Background(), []store.Request{gcra(1, 1), gcra(2, 1)}, out); err != nil {
		t.Fatalf("Take: %v", err)
	}
	for i, d := range out {
		if !d.Allowed || d.Remaining != 999 {
			t.Errorf("decision %d = %+v, want allowed with 999 left", i, d)
		}
	}

	// 64 concurrent callers: the store's pipelines merge their calls into
	// batches ('b1,1,...'), whose replies must split back per call.
	var wg sync.WaitGroup
	errs := make(chan error, 64*20)
	denied := make(chan int, 64*20)
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				out := make([]algorithms.Decision, 1)
				if err := s.Take(context.Background(), []store.Request{gcra(byte(w%26), 1)}, out); err != nil {
					errs <- err
					return
				}
				if !out[0].Allowed || out[0].Remaining != 999 {
					denied <- w
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	close(denied)
	for err := range errs {
		t.Errorf("Take: %v", err)
	}
	if n := len(denied); n > 0 {
		t.Errorf("%d decisions were not the stand-in's (allowed, 999 left)", n)
	}
}

// Anything but a take script call is refused or acknowledged, never
// answered with decisions.
func TestStandInAnswers(t *testing.T) {
	c := serve(t)
	ctx := context.Background()
	if got, err := c.Ping(ctx).Result(); err != nil || got != "PONG" {
		t.Errorf("PING = %q, %v", got, err)
	}
	if _, err := c.EvalSha(ctx, "sha", []string{"k"}).Result(); err == nil {
		t.Error("EVALSHA without the script's arguments succeeded")
	}
	got, err := c.EvalSha(ctx, "sha", []string{"k1", "k2"}, "", 1, "b1,x").Result()
	if err != nil {
		t.Fatalf("EVALSHA batch: %v", err)
	}
	entries, _ := got.([]any)
	if len(entries) != 2 {
		t.Fatalf("batch reply = %#v, want two entries", got)
	}
	if ints, _ := entries[0].([]any); len(ints) != 4 {
		t.Errorf("first call's reply = %#v, want four integers", entries[0])
	}
	if _, ok := entries[1].(error); !ok {
		t.Errorf("malformed size got %#v, want an error", entries[1])
	}
}
