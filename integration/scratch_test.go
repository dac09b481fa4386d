package integration

import (
	"fmt"
	"testing"
	"time"
)

func TestScratchFirstAfterReload(t *testing.T) {
	c := Start(t, Config{Site: `respond "v0"`})
	fails := 0
	for i := 1; i <= 200; i++ {
		c.Get(t, "/")
		c.Reload(t, Config{Site: fmt.Sprintf(`respond "v%d"`, i)})
		if d := scratchDelay; d > 0 { time.Sleep(d) }
		if _, err := c.Do(t.Context(), "/"); err != nil {
			fails++
		}
	}
	t.Logf("delay %s: %d/200 first requests after reload failed", scratchDelay, fails)
}


var scratchDelay = 50 * time.Millisecond
