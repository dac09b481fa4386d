package redis

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	goredis "github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
)

// Diagnosing errors.
//
// go-redis reports what went wrong on the wire ("WRONGPASS invalid
// username-password pair", "redis: nil"), not which store, topology and
// addresses it was talking to, nor what the operator should check. Errors
// that leave the store say both: they start with the store's description,
// such as
//
//	redis store "default" (sentinel master "m" via 127.0.0.1:26379, 127.0.0.1:26380)
//
// and a known misconfiguration gets a hint. No description or error holds
// a password: a URL is shown without its user information, and any
// password that still turns up in go-redis's text is masked.

// diagnosis describes a store's connection for its errors.
type diagnosis struct {
	// where is the store's name and topology, the prefix of its errors.
	where string
	// master is the Sentinel master name, when the topology is Sentinel.
	master string
	// cluster is set when several addresses name a Redis Cluster.
	cluster bool
	// secrets are the passwords the error text must never show.
	secrets []string
}

// diagnose returns the diagnosis of a store named name with the connection
// settings of o. Without any connection setting it names no topology: a
// store made with New over a client of the caller's does not know it.
func (o Options) diagnose(name string) diagnosis {
	d := diagnosis{where: fmt.Sprintf("redis store %q", name)}
	if topo := o.topology(); topo != "" {
		d.where += " (" + topo + ")"
	}
	d.master = o.SentinelMaster
	d.cluster = o.URL == "" && o.SentinelMaster == "" && len(o.Shards) == 0 && len(o.Addresses) > 1
	for _, p := range []string{o.Password, o.SentinelPassword, urlPassword(o.URL)} {
		if p != "" {
			d.secrets = append(d.secrets, p)
		}
	}
	return d
}

// topology describes the connection settings of o without secrets, or
// returns "" when o has none.
func (o Options) topology() string {
	switch {
	case o.URL != "":
		return "url " + redactURL(o.URL)
	case o.SentinelMaster != "":
		return fmt.Sprintf("sentinel master %q via %s", o.SentinelMaster, strings.Join(o.SentinelAddresses, ", "))
	case len(o.Shards) > 0:
		names := make([]string, 0, len(o.Shards))
		for name := range o.Shards {
			names = append(names, name)
		}
		slices.Sort(names)
		for i, name := range names {
			names[i] = name + "=" + o.Shards[name]
		}
		return "ring shards " + strings.Join(names, ", ")
	case len(o.Addresses) > 1:
		return "cluster seed nodes " + strings.Join(o.Addresses, ", ")
	case len(o.Addresses) == 1:
		return "standalone " + o.Addresses[0]
	}
	return ""
}

// redactURL returns a redis:// or rediss:// URL as scheme, address and
// database only, or a placeholder when it does not parse (the parser's
// error would quote it whole).
func redactURL(raw string) string {
	o, err := goredis.ParseURL(raw)
	if err != nil {
		return "(not shown: it does not parse)"
	}
	scheme := "redis"
	switch {
	case o.Network == "unix":
		return "unix://" + o.Addr
	case o.TLSConfig != nil:
		scheme = "rediss"
	}
	return fmt.Sprintf("%s://%s/%d", scheme, o.Addr, o.DB)
}

// urlPassword returns the password a URL carries, or "".
func urlPassword(raw string) string {
	if raw == "" {
		return ""
	}
	o, err := goredis.ParseURL(raw)
	if err != nil {
		return ""
	}
	return o.Password
}

// explain returns err prefixed with the store's description and, for a
// known misconfiguration, a hint of what to check, with every secret
// masked. It keeps err in the chain.
func (d *diagnosis) explain(doing string, err error) error {
	if err == nil {
		return nil
	}
	text := err.Error()
	hint := ""
	switch {
	case errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests):
		// The common error of an outage, on every decision: keep it cheap.
	case strings.Contains(text, "WRONGPASS") || strings.Contains(text, "NOAUTH"):
		hint = "authentication failed, check username and password: "
	case d.master != "" && errors.Is(err, goredis.Nil):
		// A sentinel answers nil to get-master-addr-by-name for a name it
		// does not monitor, which go-redis reports as every sentinel
		// being unreachable.
		hint = fmt.Sprintf("no sentinel answered with an address for master %q, check sentinel_master against the name in \"sentinel monitor\": ", d.master)
	case strings.Contains(text, "cluster support disabled"):
		hint = "a server is not a Redis Cluster node (several addresses mean the seed nodes of a Cluster; give one address for a standalone server): "
	}
	return &storeError{msg: d.mask(doing + " " + d.where + ": " + hint + text), err: err}
}

// userInfo matches the user information of a URL: scheme://user:pass@.
var userInfo = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@`)

// mask removes user information from URLs in msg and replaces every known
// secret with a marker.
func (d *diagnosis) mask(msg string) string {
	if strings.Contains(msg, "@") {
		msg = userInfo.ReplaceAllString(msg, "$1")
	}
	for _, s := range d.secrets {
		if strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}

// storeError is an error of the store, whose message has been masked; it
// unwraps to go-redis's error.
type storeError struct {
	msg string
	err error
}

func (e *storeError) Error() string { return e.msg }
func (e *storeError) Unwrap() error { return e.err }
