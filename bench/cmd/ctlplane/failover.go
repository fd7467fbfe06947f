package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/hostmesh/hostmesh/bench/benchkit"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/node"
)

// failoverRun is one killed leader: when a survivor first named a new
// leader, and when a migration a client asked for during the failover was
// granted (the queue running again, as a user sees it).
type failoverRun struct {
	killed           string
	elected, granted time.Duration
}

// failover SIGKILLs the leader. A client keeps asking non-voter host c to
// migrate vm to host dst from the moment of the kill; the run ends when
// that migration is Running. The killed host is then restarted from its data
// dir and the mesh left to settle, so every run starts from a healthy mesh.
func (m *mesh) failover(c int, vm string, dst int) (failoverRun, error) {
	l, err := m.leader()
	if err != nil {
		return failoverRun{}, err
	}
	run := failoverRun{killed: hostName(l)}
	st, err := m.status(l)
	if err != nil {
		return run, err
	}
	var survivors []int
	for _, v := range st.Voters {
		var k int
		if _, err := fmt.Sscanf(v, "h%d", &k); err == nil && k-1 != l {
			survivors = append(survivors, k-1)
		}
	}
	start := time.Now()
	m.kill(l)
	m.killed++
	elected := make(chan time.Duration, 1)
	go func() {
		_, _ = benchkit.Poll(time.Minute, 5*time.Millisecond, "a new leader", func() bool {
			for _, s := range survivors {
				if st, err := m.status(s); err == nil && st.Leader != "" && st.Leader != run.killed {
					elected <- time.Since(start)
					return true
				}
			}
			return false
		})
	}()
	var id string
	if _, err := benchkit.Poll(time.Minute, 5*time.Millisecond, "the migration to be queued", func() bool {
		var resp node.MigrateResponse
		err := m.call(m.api(c), "POST", "/v1/migrations", node.MigrateRequest{VM: vm, To: hostName(dst)}, &resp)
		var he *httpError
		if mt := heldBy.FindStringSubmatch(fmt.Sprint(err)); err != nil && mt != nil {
			// An earlier try answered "no leader" but committed.
			id = mt[1]
			return true
		}
		if err != nil && errors.As(err, &he) && he.Status < 500 {
			// A refusal is not a failover symptom: stop and say so.
			id = "!" + err.Error()
			return true
		}
		id = resp.ID
		return err == nil
	}); err != nil {
		return run, err
	}
	if id[0] == '!' {
		return run, fmt.Errorf("migrate %s during failover: %s", vm, id[1:])
	}
	if _, err := benchkit.Poll(time.Minute, 5*time.Millisecond, "migration "+id+" granted", func() bool {
		var mig fsm.Migration
		return m.call(m.api(c), "GET", "/v1/migrations/"+id, nil, &mig) == nil &&
			(mig.State == fsm.MigRunning || mig.State == fsm.MigSucceeded)
	}); err != nil {
		return run, err
	}
	run.granted = time.Since(start)
	select {
	case run.elected = <-elected:
	case <-time.After(time.Minute):
		return run, fmt.Errorf("no survivor named a new leader within a minute")
	}
	if err := m.start(l, true); err != nil {
		return run, err
	}
	if err := m.settled(3 * time.Minute); err != nil {
		return run, fmt.Errorf("mesh after restarting %s: %w", run.killed, err)
	}
	return run, m.quiet(2 * time.Minute)
}
