package main

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/bench/benchkit"
)

// drainRun is one measured drain: the POST's answer (the StartDrain entry
// committed on the leader) and the moment the client's node shows every
// migration in its replica.
type drainRun struct {
	posted, visible time.Duration
	queued          int
}

// migrationsTotal is the number of migrations a node's replica has seen
// created, from its metrics: it only grows, so "50 more" means the drain's
// migrations are all there whatever state they reached.
func (m *mesh) migrationsTotal(i int) (int, error) {
	var text strings.Builder
	if err := m.raw(m.api(i), "GET", "/metrics", nil, &text); err != nil {
		return 0, err
	}
	total := 0
	for _, l := range strings.Split(text.String(), "\n") {
		if strings.HasPrefix(l, "hostmesh_replica_migrations_created ") {
			var v float64
			if _, err := fmt.Sscanf(l[strings.LastIndex(l, " ")+1:], "%g", &v); err == nil {
				total += int(v)
			}
		}
	}
	return total, nil
}

// drainOnce drains host h through client node c and cancels the drain after.
func (m *mesh) drainOnce(c, h int) (drainRun, error) {
	before, err := m.migrationsTotal(c)
	if err != nil {
		return drainRun{}, err
	}
	var resp struct {
		Migrations []string `json:"migrations"`
	}
	start := time.Now()
	if err := m.write(m.api(c), "POST", "/v1/hosts/"+hostName(h)+"/drain", api.DrainRequest{Reason: "bench"}, &resp); err != nil {
		// A try answered "no leader" may still have committed the drain.
		if !strings.Contains(err.Error(), "a drain is already running") {
			return drainRun{}, fmt.Errorf("drain %s: %w", hostName(h), err)
		}
		resp.Migrations = make([]string, m.vms)
	}
	posted := time.Since(start)
	// VMs moved by earlier runs may have landed here: at least the host's own.
	if len(resp.Migrations) < m.vms {
		return drainRun{}, fmt.Errorf("drain %s queued %d migrations, want at least %d", hostName(h), len(resp.Migrations), m.vms)
	}
	if _, err := benchkit.Poll(30*time.Second, 2*time.Millisecond, "drain's migrations on the client's node", func() bool {
		n, err := m.migrationsTotal(c)
		return err == nil && n >= before+len(resp.Migrations)
	}); err != nil {
		return drainRun{}, err
	}
	r := drainRun{posted: posted, visible: time.Since(start), queued: len(resp.Migrations)}
	if err := m.write(m.api(c), "POST", "/v1/hosts/"+hostName(h)+"/drain/cancel", nil, nil); err != nil {
		return r, fmt.Errorf("cancel drain of %s: %w", hostName(h), err)
	}
	return r, m.quiet(2 * time.Minute)
}

// enqueueEach is the baseline: the same 50 VMs queued one request each, as
// a script calling `meshctl migrate` per VM would, then cancelled.
func (m *mesh) enqueueEach(c, h int) (drainRun, error) {
	before, err := m.migrationsTotal(c)
	if err != nil {
		return drainRun{}, err
	}
	var ids []string
	start := time.Now()
	for j := 0; j < m.vms; j++ {
		var resp api.MigrateResponse
		vm := fmt.Sprintf("%s-vm%d", hostName(h), j+1)
		if err := m.write(m.api(c), "POST", "/v1/migrations", api.MigrateRequest{VM: vm}, &resp); err != nil {
			// A try answered "no leader" may still have committed: its retry
			// then finds the VM held by the migration it queued.
			mt := heldBy.FindStringSubmatch(err.Error())
			if mt == nil {
				return drainRun{}, fmt.Errorf("enqueue %s: %w", vm, err)
			}
			resp.ID = mt[1]
		}
		ids = append(ids, resp.ID)
	}
	posted := time.Since(start)
	if _, err := benchkit.Poll(30*time.Second, 2*time.Millisecond, "migrations on the client's node", func() bool {
		n, err := m.migrationsTotal(c)
		return err == nil && n >= before+m.vms
	}); err != nil {
		return drainRun{}, err
	}
	r := drainRun{posted: posted, visible: time.Since(start)}
	for _, id := range ids {
		// Already finished or cancelled ones answer 409: nothing to undo.
		_ = m.write(m.api(c), "POST", "/v1/migrations/"+id+"/cancel", nil, nil)
	}
	return r, m.quiet(2 * time.Minute)
}

var heldBy = regexp.MustCompile(`already held by migration (m[0-9]+)`)

// quiet waits until the leader holds no queued or running migration.
func (m *mesh) quiet(timeout time.Duration) error {
	_, err := benchkit.Poll(timeout, 100*time.Millisecond, "no queued or running migration", func() bool {
		l, err := m.leader()
		if err != nil {
			return false
		}
		st, err := m.status(l)
		return err == nil && st.Queued == 0 && st.Running == 0
	})
	return err
}
