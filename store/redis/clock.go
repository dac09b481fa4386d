package redis

import (
	"os"
	"time"
)

// TestClockOffsetEnv names an environment variable for tests only: a Go
// duration ("-1.5s", "2s") that shifts this process's clock as the store
// reads it (the cache of denied keys and the local failure policy's
// limiter). The end-to-end exactness suite gives three Caddy instances
// clocks that disagree by seconds to show that decisions do not depend on
// them: the take script reads Redis's TIME. Never set it in production;
// the store logs a warning when it is set.
const TestClockOffsetEnv = "RATEWARDEN_TEST_CLOCK_OFFSET"

// clockOffset is TestClockOffsetEnv's value, or zero when it is unset or
// not a duration.
var clockOffset, clockOffsetSet = parseClockOffset(os.Getenv(TestClockOffsetEnv))

func parseClockOffset(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, false
	}
	return d, true
}

// wallNow is the process's clock as the store reads it: time.Now, shifted
// by TestClockOffsetEnv in tests.
func wallNow() time.Time {
	if clockOffset == 0 {
		return time.Now()
	}
	return time.Now().Add(clockOffset)
}
