package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// printJSON writes body pretty-printed, or as it is if it is not JSON.
// An empty body prints nothing.
func (e *env) printJSON(body []byte) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if json.Indent(&buf, body, "", "  ") != nil {
		buf.Reset()
		buf.Write(body)
	}
	buf.WriteByte('\n')
	_, err := e.out().Write(buf.Bytes())
	return err
}

// respond prints an admin API response: with --json the JSON itself, else
// what human writes after body is decoded into a T. human writes through
// a tabwriter: cells end with a tab, and consecutive lines with cells line
// up. An empty body leaves the T zero.
func respond[T any](e *env, body []byte, human func(w io.Writer, v T)) error {
	if e.json {
		return e.printJSON(body)
	}
	v, err := decode[T](body)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.out(), 0, 0, 2, ' ', 0)
	human(tw, v)
	return tw.Flush()
}

// decode decodes an admin API response body; an empty one gives the zero T.
func decode[T any](body []byte) (T, error) {
	var v T
	if len(bytes.TrimSpace(body)) == 0 {
		return v, nil
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return v, fmt.Errorf("decoding the admin API's response: %w", err)
	}
	return v, nil
}

// time formats t in UTC with how far it is from now: "2025-06-01 12:00:00
// UTC (in 2h)".
func (e *env) time(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	s := t.UTC().Format("2006-01-02 15:04:05 UTC")
	d := t.Sub(e.now())
	switch {
	case d >= time.Second:
		return s + " (in " + fmtDuration(roughly(d)) + ")"
	case d <= -time.Second:
		return s + " (" + fmtDuration(roughly(-d)) + " ago)"
	}
	return s + " (now)"
}

// timePtr is time for an optional time; nil is "-".
func (e *env) timePtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return e.time(*t)
}

// roughly rounds a positive d to two units at most ("29d23h", "2h5m").
func roughly(d time.Duration) time.Duration {
	switch {
	case d >= 24*time.Hour:
		return d.Round(time.Hour)
	case d >= time.Hour:
		return d.Round(time.Minute)
	}
	return d.Round(time.Second)
}

// fmtDuration writes d in days, hours, minutes and seconds, leaving out
// the units that are zero: "30d", "1h30m", "1.5s", "250ms". Below a
// minute it keeps milliseconds at most.
func fmtDuration(d time.Duration) string {
	if d < 0 {
		return "-" + fmtDuration(-max(d, -math.MaxInt64))
	}
	d = d.Round(time.Millisecond)
	if d < time.Minute {
		return d.String()
	}
	var b strings.Builder
	for _, u := range []struct {
		size time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}} {
		if n := d / u.size; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10) + u.name)
			d -= n * u.size
		}
	}
	if d > 0 {
		b.WriteString(d.String())
	}
	return b.String()
}

// fmtWindow shortens a Go duration string ("1m0s" is "1m"); anything else
// is shown as it is.
func fmtWindow(s string) string {
	if d, err := time.ParseDuration(s); err == nil {
		return fmtDuration(d)
	}
	return s
}

// fmtLabels is "k=v, k2=v2" in key order, or "-".
func fmtLabels(labels map[string]string) string {
	if len(labels) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, k+"="+labels[k])
	}
	return strings.Join(parts, ", ")
}

// orDash is s, or "-" when s is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// yesNo is "yes" or "no".
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// plural is "1 key" or "2 keys".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
