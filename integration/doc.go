// Package integration holds Ratewarden's end-to-end tests. They run the real
// Caddy binary built with the plugin, configure it with Caddyfiles and talk to
// it over loopback HTTP only.
//
// The binary comes from $RATEWARDEN_CADDY (make test sets it to ./caddy). When
// it is unset, the first test that needs it builds one with xcaddy into the
// repository's .build/ directory, reusing it while no build input is newer.
// With -short and no binary given, the tests are skipped instead.
//
//	go test ./integration/
//	RATEWARDEN_CADDY=$PWD/caddy go test -run TestLimit -v ./integration/
package integration
