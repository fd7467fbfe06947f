package testcluster

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
)

// TestListingsFilterAndBlock covers what the web dashboard reads: the
// migration listing's state and limit filters, the drains listing, and
// blocking reads on the listings.
func TestListingsFilterAndBlock(t *testing.T) {
	c := New(t, Options{Hosts: 3, VMsPerHost: 1})
	c.Leader(10 * time.Second)
	c.waitVMs(3)
	addr := c.Node(1).APIAddr()
	cl := c.Client(addr)
	ctx := context.Background()

	for _, bad := range []string{"/v1/migrations?state=Bogus", "/v1/migrations?limit=0", "/v1/hosts?index=x"} {
		var ae *api.Error
		if err := c.Call(addr, "GET", bad, nil, nil); !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
			t.Errorf("GET %s: %v, want 400", bad, err)
		}
	}

	id, err := c.Migrate(addr, api.MigrateRequest{VM: "vm-h1-0", To: "h2"})
	if err != nil {
		t.Fatal(err)
	}
	c.waitFinal(id, 30*time.Second)

	// A blocking read of the drains answers once the drain is committed.
	drains, meta, err := cl.Drains(ctx, nil)
	if err != nil || len(drains) != 0 || meta.LastIndex == 0 {
		t.Fatalf("drains before any: %v, index %d, %v", drains, meta.LastIndex, err)
	}
	got := make(chan []api.Drain, 1)
	go func() {
		idx := meta.LastIndex
		for {
			ds, m, err := cl.Drains(ctx, &api.QueryOptions{WaitIndex: idx, WaitTime: 30 * time.Second})
			if err != nil {
				t.Error(err)
				got <- nil
				return
			}
			if m.LastIndex <= idx && len(ds) == 0 {
				t.Errorf("a blocking read answered at index %d without a change past %d", m.LastIndex, idx)
			}
			if len(ds) > 0 {
				got <- ds
				return
			}
			idx = m.LastIndex
		}
	}()
	if err := c.Call(c.Node(0).APIAddr(), "POST", "/v1/hosts/h3/drain", map[string]string{}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case ds := <-got:
		if len(ds) != 1 || ds[0].Host != "h3" {
			t.Fatalf("drains after draining h3: %+v", ds)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the blocking read of /v1/drains did not answer after the drain")
	}
	d, _ := c.waitDrainEnd("h3", 30*time.Second)
	if d.State != fsm.DrainDone {
		t.Fatalf("drain of h3: %s", d.State)
	}

	// The drain ended on the leader's replica; read the listings there (a
	// follower may not have applied the last entries yet).
	addr = c.Leader(10 * time.Second).APIAddr()
	var all, done, live, last []fsm.Migration
	for path, out := range map[string]*[]fsm.Migration{
		"/v1/migrations":                      &all,
		"/v1/migrations?state=Succeeded":      &done,
		"/v1/migrations?state=Queued,Running": &live,
		"/v1/migrations?limit=1":              &last,
	} {
		if err := c.Call(addr, "GET", path, nil, out); err != nil {
			t.Fatal(err)
		}
	}
	if len(all) != 2 || len(done) != 2 || len(live) != 0 || len(last) != 1 || last[0].ID != all[1].ID {
		t.Fatalf("all %d, succeeded %d, live %d, limit=1 %v (want the newest of %v)", len(all), len(done), len(live), last, all)
	}
}
