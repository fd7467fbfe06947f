package testcluster

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/migrate"
)

// flakyHypervisor fails every inventory call while down is set, as a
// libvirtd that stopped answering would.
type flakyHypervisor struct {
	migrate.Hypervisor
	down *atomic.Bool
}

var errLibvirtGone = errors.New("cannot connect to the hypervisor: connection refused")

func (f flakyHypervisor) Capabilities(ctx context.Context) (migrate.Capabilities, error) {
	if f.down.Load() {
		return migrate.Capabilities{}, errLibvirtGone
	}
	return f.Hypervisor.Capabilities(ctx)
}

func (f flakyHypervisor) Domains(ctx context.Context) ([]migrate.Domain, error) {
	if f.down.Load() {
		return nil, errLibvirtGone
	}
	return f.Hypervisor.Domains(ctx)
}

// ready reads a node's readiness the way a load balancer would: no token.
func (c *Cluster) ready(t *testing.T, apiAddr string) (int, api.Readiness) {
	t.Helper()
	rd, err := c.Client(apiAddr).Ready(context.Background())
	var ae *api.Error
	switch {
	case err == nil:
		return http.StatusOK, rd
	case errors.As(err, &ae):
		return ae.Status, rd
	}
	t.Fatal(err)
	return 0, rd
}

func TestHealthLiveAndReady(t *testing.T) {
	down := &atomic.Bool{}
	c := New(t, Options{Hosts: 3, VMsPerHost: 1, WrapHypervisor: func(i int, h migrate.Hypervisor) migrate.Hypervisor {
		if i == 2 {
			return flakyHypervisor{h, down}
		}
		return h
	}})
	c.Leader(10 * time.Second)
	for _, n := range c.Nodes() {
		if l, err := c.Client(n.APIAddr()).Live(context.Background()); err != nil || !l.Live || l.Host != n.Name() {
			t.Fatalf("%s live: %+v, %v", n.Name(), l, err)
		}
		n := n
		c.WaitFor(20*time.Second, n.Name()+" ready", func() bool {
			code, rd := c.ready(t, n.APIAddr())
			return code == http.StatusOK && rd.Ready && len(rd.Checks) == 4
		})
	}

	// h3's hypervisor stops answering: h3 is not ready, naming the
	// hypervisor at once and the inventory once it is stale.
	down.Store(true)
	c.WaitFor(10*time.Second, "h3 unready for its hypervisor and stale inventory", func() bool {
		code, rd := c.ready(t, c.Node(2).APIAddr())
		return code == http.StatusServiceUnavailable && !rd.Ready &&
			slices.Equal(rd.NotReady, []string{"inventory", "hypervisor"})
	})
	_, rd := c.ready(t, c.Node(2).APIAddr())
	for _, ch := range rd.Checks {
		if ch.Name == "hypervisor" && !strings.HasSuffix(ch.Message, errLibvirtGone.Error()) {
			t.Errorf("hypervisor check says %q", ch.Message)
		}
	}
	if code, rd := c.ready(t, c.Node(0).APIAddr()); code != http.StatusOK {
		t.Errorf("h1 is %d while only h3's hypervisor is down: %+v", code, rd)
	}
	down.Store(false)
	c.WaitFor(10*time.Second, "h3 ready again", func() bool {
		code, _ := c.ready(t, c.Node(2).APIAddr())
		return code == http.StatusOK
	})

	// Cut off from the others, h1 loses its leader (or stops being one)
	// and says so.
	c.Partition(0)
	c.WaitFor(20*time.Second, "partitioned h1 unready for want of a leader", func() bool {
		code, rd := c.ready(t, c.Node(0).APIAddr())
		return code == http.StatusServiceUnavailable && slices.Contains(rd.NotReady, "leader")
	})
	c.Heal(0)
	c.WaitFor(30*time.Second, "h1 ready after the partition healed", func() bool {
		code, _ := c.ready(t, c.Node(0).APIAddr())
		return code == http.StatusOK
	})
}
