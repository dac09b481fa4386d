package redis

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	goredis "github.com/redis/go-redis/v9"
)

func TestModuleCaddyfileTopologies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		want  Options
		err   string // a part of the error, or "" for none
	}{
		{"sentinel with its credentials", `store redis {
			sentinel mymaster 10.0.0.5:26379 10.0.0.6:26379
			sentinel_username watcher
			sentinel_password {env.SENTINEL_PASSWORD}
			password {env.REDIS_PASSWORD}
		}`, Options{
			SentinelMaster: "mymaster", SentinelAddresses: []string{"10.0.0.5:26379", "10.0.0.6:26379"},
			SentinelUsername: "watcher", SentinelPassword: "{env.SENTINEL_PASSWORD}", Password: "{env.REDIS_PASSWORD}",
		}, ""},
		{"shards", "store redis {\nshard a 10.0.0.5:6379\nshard b {env.SHARD_B}\n}",
			Options{Shards: map[string]string{"a": "10.0.0.5:6379", "b": "{env.SHARD_B}"}}, ""},
		{"a full tls block", `store redis {
			address redis.internal:6380
			tls {
				ca /etc/redis/ca.pem
				cert /etc/caddy/client.pem
				key /etc/caddy/client.key
				server_name redis.internal
				insecure_skip_verify
			}
		}`, Options{Addresses: []string{"redis.internal:6380"}, TLS: &TLS{
			CA: "/etc/redis/ca.pem", Cert: "/etc/caddy/client.pem", Key: "/etc/caddy/client.key",
			ServerName: "redis.internal", InsecureSkipVerify: true,
		}}, ""},
		{"an empty tls block turns tls on", "store redis {\ntls\n}", Options{TLS: &TLS{}}, ""},
		{"pool and socket settings", `store redis {
			pool_size 50
			min_idle_conns 8
			dial_timeout 1s
			read_timeout 500ms
			write_timeout 250ms
		}`, Options{
			PoolSize: 50, MinIdleConns: 8, DialTimeout: caddy.Duration(time.Second),
			ReadTimeout: caddy.Duration(500 * time.Millisecond), WriteTimeout: caddy.Duration(250 * time.Millisecond),
		}, ""},

		{"sentinel without an address", "store redis {\nsentinel mymaster\n}", Options{}, "master name and at least one"},
		{"sentinel given twice", "store redis {\nsentinel m a:1\nsentinel m b:1\n}", Options{}, "more than once"},
		{"a sentinel password without sentinel", "store redis {\nsentinel_password x\n}", Options{}, "need sentinel_master"},
		{"sentinel and address", "store redis {\nsentinel m a:1\naddress b:1\n}", Options{}, "addresses and sentinel"},
		{"shards and url", "store redis {\nshard a a:1\nurl redis://b:1\n}", Options{}, "url and shards"},
		{"a shard without an address", "store redis {\nshard a\n}", Options{}, "name and an address"},
		{"a shard name given twice", "store redis {\nshard a a:1\nshard a b:1\n}", Options{}, `shard "a" specified more than once`},
		{"a tls cert without its key", "store redis {\ntls {\ncert c.pem\n}\n}", Options{}, "both cert and key"},
		{"an unknown tls option", "store redis {\ntls {\nciphers x\n}\n}", Options{}, "unrecognized redis store tls option"},
		{"a tls option given twice", "store redis {\ntls {\nca a\nca b\n}\n}", Options{}, "more than once"},
		{"a tls value on the tls line", "store redis {\ntls on\n}", Options{}, "wrong argument count"},
		{"insecure_skip_verify with a value", "store redis {\ntls {\ninsecure_skip_verify yes\n}\n}", Options{}, "wrong argument count"},
		{"a tls option without its file", "store redis {\ntls {\nca\n}\n}", Options{}, "wrong argument count"},
		{"tls given twice", "store redis {\ntls\ntls\n}", Options{}, "more than once"},
		{"a negative pool_size", "store redis {\npool_size -1\n}", Options{}, "pool_size must be a whole number"},
		{"a bad min_idle_conns", "store redis {\nmin_idle_conns many\n}", Options{}, "min_idle_conns must be"},
		{"a zero dial_timeout", "store redis {\ndial_timeout 0s\n}", Options{}, "invalid dial_timeout"},
		{"a bad read_timeout", "store redis {\nread_timeout soon\n}", Options{}, "invalid read_timeout"},
		{"a bad write_timeout", "store redis {\nwrite_timeout -1s\n}", Options{}, "invalid write_timeout"},
	}
	for _, tc := range tests {
		var m Module
		err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.err)
		case tc.err == "" && !reflect.DeepEqual(m.Options, tc.want):
			t.Errorf("%s: got %+v, want %+v", tc.name, m.Options, tc.want)
		}
	}
}

func TestOptionsValidateNamesTheFieldNotTheSecret(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-very-secret"
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"url and sentinel", Options{URL: "redis://:" + secret + "@h:1", SentinelMaster: "m", SentinelAddresses: []string{"s:1"}}, "url and sentinel"},
		{"a master without sentinels", Options{SentinelMaster: "m", SentinelPassword: secret}, "sentinel_master needs sentinel_addresses"},
		{"sentinels without a master", Options{SentinelAddresses: []string{"s:1"}}, "need sentinel_master"},
		{"a sentinel password alone", Options{SentinelPassword: secret}, "sentinel_password need"},
		{"a shard without an address", Options{Shards: map[string]string{"a": ""}}, `shard "a" has an empty address`},
		{"a shard without a name", Options{Shards: map[string]string{"": "h:1"}}, "empty name"},
		{"min_idle_conns over pool_size", Options{PoolSize: 2, MinIdleConns: 3, Password: secret}, "must not exceed pool_size"},
		{"a negative read_timeout", Options{ReadTimeout: -1}, "read_timeout must be positive"},
		{"a key without its cert", Options{TLS: &TLS{Key: "k.pem"}}, "both cert and key"},
	}
	for _, tc := range tests {
		_, err := NewClient(tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error %v, want one containing %q and not the secret", tc.name, err, tc.want)
		}
	}
}

func TestNewClientBuildsTheConfiguredTopology(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no address", Options{}, "*redis.Client"},
		{"one address", Options{Addresses: []string{"h:1"}}, "*redis.Client"},
		{"a url", Options{URL: "redis://h:1/2"}, "*redis.Client"},
		{"several addresses", Options{Addresses: []string{"h:1", "h:2"}}, "*redis.ClusterClient"},
		{"sentinel", Options{SentinelMaster: "m", SentinelAddresses: []string{"s:1"}}, "*redis.Client"},
		{"shards", Options{Shards: map[string]string{"a": "h:1", "b": "h:2"}}, "*redis.Ring"},
	}
	for _, tc := range tests {
		c, err := NewClient(tc.opts)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := reflect.TypeOf(c).String(); got != tc.want {
			t.Errorf("%s: got a %s, want a %s", tc.name, got, tc.want)
		}
		var _ Client = c // the store accepts every topology
		_ = c.Close()
	}

	// A Ring splits multi-zone calls by hash tag, like a Cluster.
	c, _ := NewClient(Options{Shards: map[string]string{"a": "h:1"}})
	defer c.Close()
	if s := New(c, Options{}); !s.split {
		t.Error("a store over a Ring does not split calls by hash tag")
	}

	// The pool settings reach go-redis.
	c, _ = NewClient(Options{Addresses: []string{"h:1"}, PoolSize: 7, MinIdleConns: 2,
		DialTimeout: caddy.Duration(time.Second), ReadTimeout: caddy.Duration(2 * time.Second), WriteTimeout: caddy.Duration(3 * time.Second)})
	defer c.Close()
	o := c.(*goredis.Client).Options()
	if o.PoolSize != 7 || o.MinIdleConns != 2 || o.DialTimeout != time.Second || o.ReadTimeout != 2*time.Second || o.WriteTimeout != 3*time.Second {
		t.Errorf("pool settings: size %d, min idle %d, dial %v, read %v, write %v", o.PoolSize, o.MinIdleConns, o.DialTimeout, o.ReadTimeout, o.WriteTimeout)
	}
	// A rediss:// URL turns TLS on by itself.
	c, _ = NewClient(Options{URL: "rediss://h:1"})
	defer c.Close()
	if c.(*goredis.Client).Options().TLSConfig == nil {
		t.Error("a rediss:// url did not turn TLS on")
	}
}

func TestPoolKeyCoversEveryConnectionSetting(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-very-secret"
	base := Options{Addresses: []string{"h:1"}, Password: secret}
	changes := map[string]func(*Options){
		"addresses":          func(o *Options) { o.Addresses = []string{"h:2"} },
		"url":                func(o *Options) { o.Addresses, o.URL = nil, "redis://h:1" },
		"username":           func(o *Options) { o.Username = "u" },
		"password":           func(o *Options) { o.Password = "other" },
		"db":                 func(o *Options) { o.DB = 1 },
		"sentinel_master":    func(o *Options) { o.SentinelMaster = "m" },
		"sentinel_addresses": func(o *Options) { o.SentinelAddresses = []string{"s:1"} },
		"sentinel_username":  func(o *Options) { o.SentinelUsername = "u" },
		"sentinel_password":  func(o *Options) { o.SentinelPassword = "p" },
		"shards":             func(o *Options) { o.Shards = map[string]string{"a": "h:1"} },
		"tls":                func(o *Options) { o.TLS = &TLS{} },
		"tls server_name":    func(o *Options) { o.TLS = &TLS{ServerName: "x"} },
		"pool_size":          func(o *Options) { o.PoolSize = 3 },
		"min_idle_conns":     func(o *Options) { o.MinIdleConns = 3 },
		"dial_timeout":       func(o *Options) { o.DialTimeout = 1 },
		"read_timeout":       func(o *Options) { o.ReadTimeout = 1 },
		"write_timeout":      func(o *Options) { o.WriteTimeout = 1 },
	}
	k := connKey(base)
	if strings.Contains(k, secret) || k != connKey(base) {
		t.Fatalf("pool key %q: not stable or holds the secret", k)
	}
	for name, change := range changes {
		o := base
		change(&o)
		if connKey(o) == k {
			t.Errorf("changing %s kept the pool key", name)
		}
	}
	// Settings that are not the connection's share a client.
	o := base
	o.KeyPrefix, o.Timeout, o.OnFailure = "other:", caddy.Duration(time.Second), OnFailureDeny
	if connKey(o) != k {
		t.Error("a change of key_prefix, timeout or on_failure built a new client")
	}
}

func TestModuleExpandsTopologyPlaceholders(t *testing.T) {
	t.Setenv("RW_TEST_SENTINEL", "10.0.0.9:26379")
	t.Setenv("RW_TEST_SENTINEL_PW", "sentinel-pw")
	t.Setenv("RW_TEST_CA", "/etc/ca.pem")
	t.Setenv("RW_TEST_SHARD", "10.0.0.8:6379")
	o := Options{
		SentinelMaster: "m", SentinelAddresses: []string{"{env.RW_TEST_SENTINEL}"},
		SentinelPassword: "{env.RW_TEST_SENTINEL_PW}",
		TLS:              &TLS{CA: "{env.RW_TEST_CA}"},
	}
	got := o.expanded(caddy.NewReplacer())
	if got.SentinelAddresses[0] != "10.0.0.9:26379" || got.SentinelPassword != "sentinel-pw" || got.TLS.CA != "/etc/ca.pem" {
		t.Errorf("expanded: %+v %+v", got, got.TLS)
	}
	if o.SentinelAddresses[0] != "{env.RW_TEST_SENTINEL}" || o.TLS.CA != "{env.RW_TEST_CA}" {
		t.Error("expanding changed the configured options, which the JSON config shows")
	}
	shards := Options{Shards: map[string]string{"a": "{env.RW_TEST_SHARD}"}}
	if got := shards.expanded(caddy.NewReplacer()); got.Shards["a"] != "10.0.0.8:6379" || shards.Shards["a"] != "{env.RW_TEST_SHARD}" {
		t.Errorf("shards expanded to %v, configured now %v", got.Shards, shards.Shards)
	}
}
