package testcluster

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hostmesh/hostmesh/migrate"
)

// faultTrace keeps what a failing schedule needs to explain itself: every
// meshd's log (in memory), every call of a hypervisor's Migrate with the
// host's incarnation, and the schedule's own steps, each with its time
// since the schedule began. A violation about a migration prints, in time
// order, the schedule's steps and what concerns that migration, so that a
// soak's rare failure can be read without a replay that may not reproduce
// its timing.
type faultTrace struct {
	logs *LogCapture
	t0   time.Time

	mu     sync.Mutex
	c      *Cluster
	events []traceEvent // Migrate calls and schedule steps
}

type traceEvent struct {
	at   time.Duration
	text string
}

func newFaultTrace() *faultTrace {
	return &faultTrace{logs: NewLogCapture(), t0: time.Now()}
}

// handler is the meshd log handler: the capture, each record stamped with
// its time since the schedule began ("t").
func (f *faultTrace) handler() slog.Handler { return stampHandler{Handler: f.logs, t0: f.t0} }

type stampHandler struct {
	slog.Handler
	t0 time.Time
}

func (h stampHandler) Handle(ctx context.Context, r slog.Record) error {
	r.AddAttrs(slog.Duration("t", r.Time.Sub(h.t0)))
	return h.Handler.Handle(ctx, r)
}

func (h stampHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return stampHandler{Handler: h.Handler.WithAttrs(attrs), t0: h.t0}
}

func (h stampHandler) WithGroup(name string) slog.Handler {
	return stampHandler{Handler: h.Handler.WithGroup(name), t0: h.t0}
}

// note records a step of the schedule (a fault, a heal, a check).
func (f *faultTrace) note(text string) {
	f.mu.Lock()
	f.events = append(f.events, traceEvent{time.Since(f.t0), "schedule: " + text})
	f.mu.Unlock()
}

// wrap records host i's Migrate calls.
func (f *faultTrace) wrap(i int, h migrate.Hypervisor) migrate.Hypervisor {
	return tracedHypervisor{Hypervisor: h, f: f, i: i}
}

type tracedHypervisor struct {
	migrate.Hypervisor
	f *faultTrace
	i int
}

func (h tracedHypervisor) Migrate(ctx context.Context, name string, p migrate.Params) (migrate.Job, error) {
	job, err := h.Hypervisor.Migrate(ctx, name, p)
	h.f.mu.Lock()
	c := h.f.c
	h.f.mu.Unlock()
	inc := 0
	if c != nil {
		c.mu.Lock()
		inc = c.started[h.i]
		c.mu.Unlock()
	}
	h.f.mu.Lock()
	h.f.events = append(h.f.events, traceEvent{time.Since(h.f.t0),
		fmt.Sprintf("hypervisor %s (meshd incarnation %d): Migrate %s id=%s: err=%v", HostName(h.i), inc, name, p.ID, err)})
	h.f.mu.Unlock()
	return job, err
}

// explain returns, in time order, the schedule's steps and the trace of the
// migration a violation names (its ID before "#"); nil when it names none.
func (f *faultTrace) explain(violation string) []string {
	id := ""
	for _, w := range strings.Fields(violation) {
		if strings.HasPrefix(w, "m") && strings.Contains(w, "#") {
			id, _, _ = strings.Cut(w, "#")
			break
		}
	}
	behind := replicasBehind(violation)
	if id == "" && len(behind) == 0 {
		return nil
	}
	var evs []traceEvent
	f.mu.Lock()
	for _, e := range f.events {
		if strings.HasPrefix(e.text, "schedule: ") || (id != "" && strings.Contains(e.text, "id="+id+"#")) {
			evs = append(evs, e)
		}
	}
	f.mu.Unlock()
	for _, l := range f.logs.Lines(slog.LevelDebug, "") {
		// a migration's lines; for replicas left behind, what their hosts
		// warned of and every change of the Raft configuration
		mine := id != "" && (l.Attrs["migration"] == id || strings.Contains(l.Msg, id))
		lag := len(behind) > 0 && ((behind[l.Attrs["host"]] && l.Level >= slog.LevelWarn) || strings.Contains(l.Msg, "raft peer"))
		if !mine && !lag {
			continue
		}
		d, _ := time.ParseDuration(l.Attrs["t"])
		delete(l.Attrs, "t")
		evs = append(evs, traceEvent{d, l.String()})
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at < evs[j].at })
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		out = append(out, fmt.Sprintf("+%s %s", e.at.Round(time.Millisecond), e.text))
	}
	return out
}

// replicasBehind names the hosts of a "replicas differ" violation whose
// applied index is the lowest ("h2@100(...)").
func replicasBehind(violation string) map[string]bool {
	if !strings.HasPrefix(violation, "replicas differ: ") {
		return nil
	}
	idx := map[string]uint64{}
	low := uint64(1<<64 - 1)
	for _, w := range strings.Fields(strings.TrimPrefix(violation, "replicas differ: ")) {
		host, rest, ok := strings.Cut(w, "@")
		if !ok {
			continue
		}
		var v uint64
		if _, err := fmt.Sscanf(rest, "%d", &v); err != nil {
			continue
		}
		idx[host] = v
		low = min(low, v)
	}
	out := map[string]bool{}
	for h, v := range idx {
		if v == low {
			out[h] = true
		}
	}
	return out
}

// raftReplicationStacks returns the stacks of this process's goroutines
// that replicate Raft entries (a leader's pipeline to each follower, its
// transport's halves) and have been blocked for a minute or more (Go
// prints how long each waited): a replica left behind is explained by one.
func raftReplicationStacks() string {
	buf := make([]byte, 64<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		head, _, _ := strings.Cut(g, "\n")
		// blocked a minute or more: a healthy pipeline waits milliseconds
		if strings.Contains(head, "minutes]") && (strings.Contains(g, "pipeline") || strings.Contains(g, "(*Raft).replicate")) {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}
