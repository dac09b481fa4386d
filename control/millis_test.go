package control

import (
	"encoding/json"
	"testing"
	"time"
)

func TestMillisRoundsUpAndRoundTrips(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{0, "0"}, {time.Nanosecond, "1"}, {1500 * time.Microsecond, "2"}, {65 * time.Second, "65000"}} {
		b, err := json.Marshal(Millis(tc.d))
		if err != nil || string(b) != tc.want {
			t.Errorf("%v: %s %v, want %s", tc.d, b, err, tc.want)
		}
	}
	var m Millis
	if err := json.Unmarshal([]byte("65000"), &m); err != nil || time.Duration(m) != 65*time.Second {
		t.Errorf("unmarshal: %v %v", time.Duration(m), err)
	}
	if err := json.Unmarshal([]byte(`"5s"`), &m); err == nil {
		t.Error("a string must not decode as milliseconds")
	}
}
