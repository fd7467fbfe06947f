package daemon

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/hostmesh/hostmesh/node"
	"github.com/hostmesh/hostmesh/shutdown"
)

// policyVar is the shutdown policy in effect; a reload (SIGHUP) sets it.
type policyVar struct{ v atomic.Value }

func (p *policyVar) Get() shutdown.Policy  { return p.v.Load().(shutdown.Policy) }
func (p *policyVar) Set(v shutdown.Policy) { p.v.Store(v) }

// startShutdownGuard takes logind's delay inhibitor and starts the guard
// applying the shutdown policy. Without logind (no system bus: most
// containers) meshd says so and runs without one: a shutdown is then a
// plain SIGTERM, which stops meshd and leaves the VMs where they are.
func startShutdownGuard(ctx context.Context, log *slog.Logger, n *node.Node, policy *policyVar, drainTimeout time.Duration) *shutdown.Guard {
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	w, err := shutdown.Open(octx, "meshd", "hostmesh: apply the shutdown policy (drain or freeze this host) before the system goes down")
	cancel()
	if err != nil {
		log.Warn("no logind on a system bus: running without a shutdown inhibitor; a system shutdown or reboot will stop meshd "+
			"like a restart (VMs stay, nothing drains) and the shutdown policy is not applied", "err", err, "shutdown_policy", policy.Get())
	} else {
		attrs := []any{"shutdown_policy", policy.Get(), "inhibit_delay_max", w.MaxDelay()}
		if err := w.MaxDelayErr(); err != nil {
			attrs = append(attrs, "inhibit_delay_max_err", err)
		}
		if w.MaxDelay() > 0 && w.MaxDelay() < drainTimeout {
			attrs = append(attrs, "note", "a drain on shutdown longer than InhibitDelayMaxSec goes on while systemd stops meshd (the stop timeout is extended); "+
				"raise InhibitDelayMaxSec in /etc/systemd/logind.conf.d/ to drain before any unit stops")
		}
		log.Info("logind delay inhibitor taken: a system shutdown or reboot applies the shutdown policy first", attrs...)
		go func() {
			<-ctx.Done()
			_ = w.Close()
		}()
	}
	g := shutdown.NewGuard(shutdown.Config{Log: log, Host: n, Watcher: w, Policy: policy.Get, DrainTimeout: drainTimeout,
		Extend: func(done <-chan struct{}) { extendWhile(log, done, 10*time.Second) }})
	if w != nil {
		go g.Run(ctx)
	}
	// A host frozen for a reboot comes back Up.
	go func() {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		if err := n.Thaw(tctx); err != nil && ctx.Err() == nil {
			log.Warn("thaw after a frozen shutdown", "err", err)
		}
	}()
	return g
}
