package ratewarden

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"

	"github.com/ratewarden/ratewarden/control"
	"github.com/ratewarden/ratewarden/store"
	"github.com/ratewarden/ratewarden/topk"
)

// sketches holds each zone name's heavy-hitters sketch of denied keys. It
// is pooled by zone name, so the top keys survive config reloads as the
// counters do.
var sketches = caddy.NewUsagePool()

// pooledSketch makes a sketch a pool value.
type pooledSketch struct{ *topk.Sketch }

func (pooledSketch) Destruct() error { return nil }

// topKeysCapacity is how many keys each zone's sketch tracks.
const topKeysCapacity = topk.DefaultCapacity

// loadSketch returns the zone's sketch, creating it on first use.
func loadSketch(zone string) (*topk.Sketch, error) {
	v, _, err := sketches.LoadOrNew(zone, func() (caddy.Destructor, error) {
		return pooledSketch{topk.New(topKeysCapacity)}, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(pooledSketch).Sketch, nil
}

// Cleanup releases the handler's hold on its zones' sketches.
func (h *Handler) Cleanup() error {
	for _, z := range h.zones {
		if z.top != nil {
			_, _ = sketches.Delete(z.name)
		}
	}
	return nil
}

// recordDenial feeds a denied (or shadow-denied) key to its zone's sketch,
// labelled with the raw key under log_key, else with the API key's name
// (Top tells the two apart by the zone's log_key).
func (h *Handler) recordDenial(repl *caddy.Replacer, sc *scratch, i int) {
	z := sc.zones[i]
	if z.top == nil {
		return
	}
	label := ""
	if z.LogKey {
		label = sc.raw[i]
	} else if h.APIKey != nil {
		if v, ok := repl.Get(phAPIKeyName); ok {
			label, _ = v.(string)
		}
	}
	z.top.Add(sc.reqs[i].Key, label)
}

// Top returns a zone's most-denied keys (admin.Backend).
func (a *App) Top(zone string, n int) (control.TopKeys, error) {
	refs := a.zoneRefs()[zone]
	if len(refs) == 0 {
		return control.TopKeys{}, fmt.Errorf("zone %q: %w", zone, control.ErrNotFound)
	}
	out := control.TopKeys{Zone: zone, Keys: []control.TopKey{}}
	s := refs[0].z.top
	if s == nil {
		return out, nil
	}
	out.Total = s.Total()
	for _, e := range s.Top(n) {
		tk := control.TopKey{KeyHash: store.Key(e.Key).String(), Count: e.Count, Error: e.Error}
		if refs[0].z.LogKey {
			tk.Key = e.Label
		} else {
			tk.APIKey = e.Label
		}
		out.Keys = append(out.Keys, tk)
	}
	return out, nil
}
