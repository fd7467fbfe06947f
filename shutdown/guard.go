package shutdown

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/hostmesh/hostmesh/api"
)

// Host is what a policy acts on (*node.Node).
type Host interface {
	// Leave drains the host, then leaves the mesh.
	Leave(ctx context.Context, timeout time.Duration) (*api.LeaveReport, error)
	// Freeze marks the host frozen: nothing placed on it, VMs stay.
	Freeze(ctx context.Context, why string) error
	// Thaw undoes Freeze (a shutdown cancelled).
	Thaw(ctx context.Context) error
}

// Config configures a Guard.
type Config struct {
	Log  *slog.Logger
	Host Host
	// Watcher is logind's; nil without one (no system bus): the guard then
	// only ever answers "restart" to a SIGTERM.
	Watcher *Watcher
	// Policy is read when a shutdown comes, so a reload may change it.
	Policy       func() Policy
	DrainTimeout time.Duration
	// Extend keeps systemd waiting (sd_notify EXTEND_TIMEOUT_USEC) until
	// done closes; nil outside systemd.
	Extend func(done <-chan struct{})
}

// Guard applies the shutdown policy: on logind's PrepareForShutdown (Run)
// and on a SIGTERM that is part of a shutdown (OnTerm).
type Guard struct {
	cfg Config

	mu      sync.Mutex
	acting  chan struct{} // closed when the running action ends; nil: none ran
	action  Action        // the action taken (ActNone before one)
	decided bool          // an action was chosen (defer excluded)
	left    chan struct{} // closed when the host drained and left
}

// NewGuard builds a guard.
func NewGuard(cfg Config) *Guard {
	if cfg.Extend == nil {
		cfg.Extend = func(<-chan struct{}) {}
	}
	return &Guard{cfg: cfg, action: ActNone, left: make(chan struct{})}
}

// Left closes when the policy drained the host and it left the mesh:
// meshd has nothing more to do and exits.
func (g *Guard) Left() <-chan struct{} { return g.left }

// Action is the action taken so far (ActNone before a shutdown).
func (g *Guard) Action() Action {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.action
}

// Run watches logind until ctx ends or the watcher closes.
func (g *Guard) Run(ctx context.Context) {
	w := g.cfg.Watcher
	if w == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case starting, ok := <-w.Prepare():
			if !ok {
				return
			}
			if starting {
				g.onPrepare(ctx)
			} else {
				g.onCancel(ctx)
			}
		}
	}
}

// onPrepare is PrepareForShutdown(true).
func (g *Guard) onPrepare(ctx context.Context) {
	w := g.cfg.Watcher
	policy := g.cfg.Policy()
	kind, from := g.announcedKind(ctx)
	act := Decide(policy, kind)
	g.cfg.Log.Info("shutdown announced by logind (PrepareForShutdown)", "policy", policy, "kind", kind, "kind_from", from, "action", act,
		"inhibit_delay_max", w.MaxDelay())
	if act == ActDefer {
		g.cfg.Log.Info("shutdown: reboot or power-off not known yet; deciding when systemd stops meshd, from its job queue")
	} else {
		g.act(ctx, act, string(kind)+", announced by logind")
	}
	if err := w.Release(); err != nil {
		g.cfg.Log.Warn("shutdown: release the logind inhibitor", "err", err)
	}
	g.cfg.Log.Info("shutdown: logind inhibitor released", "action", g.Action())
}

// announcedKind is the kind of the shutdown logind announced, and where
// it was read: logind's own metadata where it has them (systemd 255 and
// later), else systemd's job queue, which at this point usually has no
// target queued yet (Unknown).
func (g *Guard) announcedKind(ctx context.Context) (Kind, string) {
	w := g.cfg.Watcher
	kind, err := w.Announced(ctx)
	if err != nil {
		g.cfg.Log.Debug("shutdown: logind gave no shutdown metadata (systemd older than 255); reading systemd's job queue", "err", err)
	} else if kind != Unknown {
		return kind, "logind metadata"
	}
	kind, err = w.Pending(ctx)
	if err != nil {
		g.cfg.Log.Warn("shutdown: systemd's job queue unreadable; reboot or power-off unknown", "err", err)
		return Unknown, "nothing readable"
	}
	if kind == None {
		kind = Unknown // logind announced it: systemd has not queued its target yet
	}
	return kind, "systemd job queue"
}

// onCancel is PrepareForShutdown(false): the shutdown was cancelled. A
// frozen host is thawed; the inhibitor is taken again. A host that drained
// and left stays out (meshd exits when it leaves).
func (g *Guard) onCancel(ctx context.Context) {
	g.mu.Lock()
	act := g.action
	if act == ActFreeze {
		g.action, g.decided, g.acting = ActNone, false, nil
	}
	g.mu.Unlock()
	g.cfg.Log.Info("shutdown cancelled (PrepareForShutdown false)", "action_taken", act)
	if act == ActFreeze {
		if err := g.cfg.Host.Thaw(ctx); err != nil {
			g.cfg.Log.Error("shutdown cancelled: thaw", "err", err)
		}
	}
	if act != ActMigrate {
		if err := g.cfg.Watcher.Inhibit(ctx); err != nil {
			g.cfg.Log.Error("shutdown cancelled: take the inhibitor again", "err", err)
		}
	}
}

// OnTerm is meshd's SIGTERM. It returns the action meshd took for the
// shutdown, waiting for one that runs, or ActNone when the SIGTERM is a
// plain stop or restart (no shutdown job in systemd's queue): meshd then
// stops and leaves the VMs where they are.
func (g *Guard) OnTerm(ctx context.Context) Action {
	g.mu.Lock()
	running, decided := g.acting, g.decided
	g.mu.Unlock()
	if decided {
		if running != nil {
			done := make(chan struct{})
			go g.cfg.Extend(done)
			g.cfg.Log.Info("SIGTERM while the shutdown policy runs: waiting for it (the stop timeout is extended)")
			select {
			case <-running:
			case <-ctx.Done():
			}
			close(done)
		}
		return g.Action()
	}
	if g.cfg.Watcher == nil {
		return ActNone
	}
	kind, err := g.cfg.Watcher.Pending(ctx)
	if err != nil {
		g.cfg.Log.Warn("SIGTERM: systemd's job queue unreadable: taken as a restart", "err", err)
		return ActNone
	}
	policy := g.cfg.Policy()
	act := Decide(policy, kind)
	if act == ActNone {
		return ActNone
	}
	g.cfg.Log.Info("SIGTERM in a system shutdown (systemd's job queue)", "policy", policy, "kind", kind, "action", act)
	g.act(ctx, act, string(kind)+", meshd stopped by systemd")
	_ = g.cfg.Watcher.Release()
	return g.Action()
}

// act runs an action once; a second call waits for the first.
func (g *Guard) act(ctx context.Context, act Action, why string) {
	g.mu.Lock()
	if g.decided {
		running := g.acting
		g.mu.Unlock()
		if running != nil {
			<-running
		}
		return
	}
	g.decided, g.action = true, act
	running := make(chan struct{})
	g.acting = running
	g.mu.Unlock()
	defer close(running)
	switch act {
	case ActMigrate:
		done := make(chan struct{})
		go g.cfg.Extend(done)
		start := time.Now()
		g.cfg.Log.Info("shutdown: draining this host, then leaving the mesh", "why", why, "timeout", g.cfg.DrainTimeout)
		rep, err := g.cfg.Host.Leave(ctx, g.cfg.DrainTimeout)
		close(done)
		switch {
		case err != nil:
			g.cfg.Log.Error("shutdown: drain and leave", "err", err)
		case len(rep.Unmovable) > 0:
			g.cfg.Log.Warn("shutdown: left with VMs that could not move", "unmovable", rep.Unmovable, "took", time.Since(start))
		default:
			g.cfg.Log.Info("shutdown: drained and left", "moved", len(rep.Moved), "took", time.Since(start))
		}
		if err == nil {
			close(g.left)
		}
	case ActFreeze:
		if err := g.cfg.Host.Freeze(ctx, why); err != nil {
			g.cfg.Log.Error("shutdown: freeze", "err", err)
		} else {
			g.cfg.Log.Info("shutdown: host frozen, its VMs stay where they are; meshd thaws it when it starts again", "why", why)
		}
	}
}
