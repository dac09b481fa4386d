package redis

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Topologies.
//
// Options name one of four ways to reach Redis, and NewClient builds the
// go-redis client for it:
//
//   - one address or a URL: a plain *goredis.Client;
//   - several addresses: the seed nodes of a Redis Cluster, a
//     *goredis.ClusterClient;
//   - sentinel_master and sentinel_addresses: a failover client (a
//     *goredis.Client that asks the sentinels where the primary is and
//     follows its switches), with every command on the primary;
//   - shards: a *goredis.Ring, which places each key on a shard by
//     consistent hashing of its hash tag.
//
// The store routes a multi-zone call by hash tag on a Cluster and a Ring
// (see split.go); on the others one script decides it.

// NewClient returns a client for the connection settings in opts. It does
// not connect; the first command does. Errors never contain the URL or a
// password. The client traces its commands under a recording span (see
// tracing.go).
func NewClient(opts Options) (goredis.UniversalClient, error) {
	g := new(commandGate)
	c, err := newClient(opts, g)
	if err != nil {
		return nil, err
	}
	if err := g.instrument(c); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("instrumenting the redis client for tracing: %w", err)
	}
	return c, nil
}

// newClient is NewClient before the tracing of g is added; a Ring's
// shards get theirs as they are made (see commandGate.newShard).
func newClient(opts Options, g *commandGate) (goredis.UniversalClient, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	switch {
	case opts.URL != "":
		return urlClient(opts)
	case opts.SentinelMaster != "":
		tlsCfg, err := opts.tlsConfig(nil)
		if err != nil {
			return nil, err
		}
		fo := &goredis.FailoverOptions{
			MasterName:       opts.SentinelMaster,
			SentinelAddrs:    opts.SentinelAddresses,
			SentinelUsername: opts.SentinelUsername,
			SentinelPassword: opts.SentinelPassword,
			// Reads stay on the primary: a replica may lag behind it,
			// and every decision writes anyway.
			ReplicaOnly:   false,
			RouteRandomly: false,
			Username:      opts.Username,
			Password:      opts.Password,
			DB:            opts.DB,
			TLSConfig:     tlsCfg,
			// Honour each decision's deadline, not only the socket
			// timeouts.
			ContextTimeoutEnabled: true,
		}
		opts.pool(&fo.PoolSize, &fo.MinIdleConns, &fo.DialTimeout, &fo.ReadTimeout, &fo.WriteTimeout)
		return goredis.NewFailoverClient(fo), nil
	case len(opts.Shards) > 0:
		tlsCfg, err := opts.tlsConfig(nil)
		if err != nil {
			return nil, err
		}
		ro := &goredis.RingOptions{
			Addrs:                 opts.Shards,
			Username:              opts.Username,
			Password:              opts.Password,
			DB:                    opts.DB,
			TLSConfig:             tlsCfg,
			ContextTimeoutEnabled: true,
			NewClient:             g.newShard,
		}
		opts.pool(&ro.PoolSize, &ro.MinIdleConns, &ro.DialTimeout, &ro.ReadTimeout, &ro.WriteTimeout)
		return goredis.NewRing(ro), nil
	}
	tlsCfg, err := opts.tlsConfig(nil)
	if err != nil {
		return nil, err
	}
	addrs := opts.Addresses
	if len(addrs) == 0 {
		addrs = []string{"localhost:6379"}
	}
	uo := &goredis.UniversalOptions{
		Addrs:                 addrs,
		Username:              opts.Username,
		Password:              opts.Password,
		DB:                    opts.DB,
		TLSConfig:             tlsCfg,
		ContextTimeoutEnabled: true,
	}
	opts.pool(&uo.PoolSize, &uo.MinIdleConns, &uo.DialTimeout, &uo.ReadTimeout, &uo.WriteTimeout)
	return goredis.NewUniversalClient(uo), nil
}

// urlClient returns the plain client of a redis:// or rediss:// URL, with
// the settings of opts over the URL's.
func urlClient(opts Options) (goredis.UniversalClient, error) {
	o, err := goredis.ParseURL(opts.URL)
	if err != nil {
		// url.Parse quotes the whole URL, password included.
		return nil, errors.New("parsing the redis url: want redis://[user:password@]host:port[/db] or rediss://... (the url is not shown, as it may hold a password)")
	}
	if opts.Username != "" {
		o.Username = opts.Username
	}
	if opts.Password != "" {
		o.Password = opts.Password
	}
	if opts.DB != 0 {
		o.DB = opts.DB
	}
	if o.TLSConfig, err = opts.tlsConfig(o.TLSConfig); err != nil {
		return nil, err
	}
	o.ContextTimeoutEnabled = true
	opts.pool(&o.PoolSize, &o.MinIdleConns, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout)
	return goredis.NewClient(o), nil
}

// tlsConfig returns the TLS settings of opts over base (a rediss:// URL's),
// or base when opts has none.
func (o Options) tlsConfig(base *tls.Config) (*tls.Config, error) {
	if o.TLS == nil {
		return base, nil
	}
	return o.TLS.config(base)
}

// pool copies the pool and socket settings that are set in o; go-redis's
// defaults apply to the others.
func (o Options) pool(size, minIdle *int, dial, read, write *time.Duration) {
	if o.PoolSize > 0 {
		*size = o.PoolSize
	}
	if o.MinIdleConns > 0 {
		*minIdle = o.MinIdleConns
	}
	if o.DialTimeout > 0 {
		*dial = time.Duration(o.DialTimeout)
	}
	if o.ReadTimeout > 0 {
		*read = time.Duration(o.ReadTimeout)
	}
	if o.WriteTimeout > 0 {
		*write = time.Duration(o.WriteTimeout)
	}
}
