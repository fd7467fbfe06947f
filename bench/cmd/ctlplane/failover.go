package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/bench/benchkit"
)

// failoverRun is one killed leader: when a survivor first named a new
// leader, and when a migration a client asked for during the failover was
// granted (the queue running again, as a user sees it).
type failoverRun struct {
	killed           string
	elected, granted time.Duration
}

// failover SIGKILLs the leader. A client keeps asking host c (the last
// host, a non-voter in a large mesh) to migrate a VM that is on neither the
// leader nor c to a third host, from the moment of the kill; the run ends
// when that migration is Running. The killed host is then restarted from its
// data dir and the mesh left to settle, so every run starts from a healthy
// mesh.
func (m *mesh) failover(r int) (failoverRun, error) {
	l, err := m.leader()
	if err != nil {
		return failoverRun{}, err
	}
	run := failoverRun{killed: hostName(l)}
	c := m.n - 1
	if c == l {
		c = 0
	}
	vm, dst, err := m.pickMove(r, l)
	if err != nil {
		return run, err
	}
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
		var resp api.MigrateResponse
		err := m.call(m.api(c), "POST", "/v1/migrations", api.MigrateRequest{VM: vm, To: dst}, &resp)
		var he *api.Error
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
		var mig api.Migration
		return m.call(m.api(c), "GET", "/v1/migrations/"+id, nil, &mig) == nil &&
			(mig.State == api.MigRunning || mig.State == api.MigSucceeded)
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
	if err := m.settled(3*time.Minute, false); err != nil {
		return run, fmt.Errorf("mesh after restarting %s: %w", run.killed, err)
	}
	return run, m.quiet(2 * time.Minute)
}

// pickMove chooses, for run r, a VM that is not moving and not on the leader
// l, and a destination that is neither its host nor l.
func (m *mesh) pickMove(r, l int) (vm, dst string, err error) {
	var vms []api.VM
	if err := m.call(m.api(m.n-1-boolInt(m.n-1 == l)), "GET", "/v1/vms", nil, &vms); err != nil {
		return "", "", err
	}
	var ok []api.VM
	for _, v := range vms {
		if v.Migration == "" && v.Host != hostName(l) && v.Host != hostName(m.n-1) {
			ok = append(ok, v)
		}
	}
	if len(ok) == 0 {
		return "", "", fmt.Errorf("no VM to move off a host other than the leader %s", hostName(l))
	}
	v := ok[(r*131+7)%len(ok)]
	for j := 1; j < m.n; j++ {
		if d := hostName((l + j) % m.n); d != v.Host && d != hostName(l) {
			return v.Name, d, nil
		}
	}
	return "", "", fmt.Errorf("no destination for %s", v.Name)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
