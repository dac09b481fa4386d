package ratewarden

import (
	"github.com/ratewarden/ratewarden/algorithms"
	"github.com/ratewarden/ratewarden/store"
)

// scratch holds one request's per-zone working set. Handlers pool them so
// the decision path does not allocate.
type scratch struct {
	zones []*Zone
	raw   []string
	reqs  []store.Request
	out   []algorithms.Decision
	// body is room for a refusal's body.
	body [len(problemPrefix) + 20 + len(problemSuffix)]byte
}

func newScratch(zones int) *scratch {
	sc := &scratch{
		zones: make([]*Zone, 0, zones),
		raw:   make([]string, 0, zones),
		reqs:  make([]store.Request, 0, zones),
		out:   make([]algorithms.Decision, zones),
	}
	return sc
}

func (sc *scratch) reset() {
	clear(sc.raw)
	sc.zones, sc.raw, sc.reqs = sc.zones[:0], sc.raw[:0], sc.reqs[:0]
	sc.out = sc.out[:cap(sc.out)]
}

// needsAfter reports whether anything must happen after the response:
// releasing concurrency slots or charging count_if zones.
func (sc *scratch) needsAfter() bool {
	for i, z := range sc.zones {
		if (z.concurrency && sc.out[i].Allowed) || z.CountIf != nil {
			return true
		}
	}
	return false
}

// outcome is the allowed request's outcome: shadow_denied when a shadow
// zone would have refused it, else allowed.
func (sc *scratch) outcome() string {
	for i := range sc.out {
		if !sc.out[i].Allowed {
			return outcomeShadowDenied
		}
	}
	return outcomeAllowed
}
