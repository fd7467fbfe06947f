package testcluster

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
)

// seriesName finds metric names in rules and dashboards.
var seriesName = regexp.MustCompile(`\b(hostmesh|process|go)_[A-Za-z0-9_]+`)

// scrapeAll scrapes every running node, failing the test on an error.
func (c *Cluster) scrapeAll(t *testing.T) map[string]Metrics {
	t.Helper()
	out := map[string]Metrics{}
	for _, n := range c.Nodes() {
		ms, err := c.Scrape(n.APIAddr())
		if err != nil {
			t.Fatal(err)
		}
		out[n.Name()] = ms
	}
	return out
}

// sumOver adds a counter or gauge over every node's scrape.
func sumOver(all map[string]Metrics, name string, labels ...string) float64 {
	var total float64
	for _, ms := range all {
		v, _ := ms.Value(name, labels...)
		total += v
	}
	return total
}

func histOver(all map[string]Metrics, name string, labels ...string) (uint64, float64) {
	var count uint64
	var sum float64
	for _, ms := range all {
		c, s := ms.HistCount(name, labels...)
		count += c
		sum += s
	}
	return count, sum
}

// TestMetricsAfterMigrationRefusalAndDrain scrapes /metrics as Prometheus
// would after a migration, a refused migration and a drain, and checks the
// counters and histograms each host exports and the state series only the
// leader exports.
func TestMetricsAfterMigrationRefusalAndDrain(t *testing.T) {
	c := New(t, Options{Hosts: 3, VMsPerHost: 2})
	l := c.Leader(10 * time.Second)
	c.waitVMs(6)

	// A migration, asked through h2: h1 runs it and counts it.
	id, err := c.Migrate(c.Node(1).APIAddr(), api.MigrateRequest{VM: "vm-h1-0"})
	if err != nil {
		t.Fatal(err)
	}
	if m := c.waitFinal(id, 30*time.Second); m.State != fsm.MigSucceeded {
		t.Fatalf("migration %s: %s (%s)", id, m.State, m.Reason)
	}
	// A refusal at h3's API: a VM cannot move to the host it runs on.
	if _, err := c.Migrate(c.Node(2).APIAddr(), api.MigrateRequest{VM: "vm-h1-1", To: "h1"}); err == nil || !strings.Contains(err.Error(), "distinct-hosts") {
		t.Fatalf("migrate vm-h1-1 to its own host: %v, want a distinct-hosts refusal", err)
	}
	// A drain of h2: its VMs (and vm-h1-0 if it landed there) move away.
	var onH2 int
	l.FSM().Read(func(s *fsm.State) { onH2 = len(s.VMsOn("h2")) })
	if err := c.Call(c.Node(0).APIAddr(), "POST", "/v1/hosts/h2/drain", map[string]string{}, nil); err != nil {
		t.Fatal(err)
	}
	// While the drain runs, the leader exports its running migrations.
	var running Metrics
	c.WaitFor(30*time.Second, "a running migration in the leader's metrics", func() bool {
		ms, err := c.Scrape(c.Leader(10 * time.Second).APIAddr())
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := ms.Value("hostmesh_migration_data_total_bytes", "source", "h2"); ok && v > 0 {
			running = ms
			return true
		}
		return false
	})
	d, st := c.waitDrainEnd("h2", 60*time.Second)
	if d.State != fsm.DrainDone || st != fsm.HostMaintenance || len(d.Moved) != onH2 {
		t.Fatalf("drain of h2: %s, host %s, moved %d of %d", d.State, st, len(d.Moved), onH2)
	}

	// What the state says happened, to compare the counters with.
	succeeded := map[string]int{} // by source
	total := 0
	l = c.Leader(10 * time.Second)
	l.FSM().Read(func(s *fsm.State) {
		for _, m := range s.Migrations {
			if m.State == fsm.MigSucceeded {
				succeeded[m.Source]++
				total++
			}
		}
	})
	if total != 1+onH2 {
		t.Fatalf("%d migrations succeeded, want %d", total, 1+onH2)
	}
	// The source counts after its Finish committed, a moment after the
	// leader's replica shows it: wait for the counters, not for time.
	var all map[string]Metrics
	c.WaitFor(10*time.Second, "every succeeded migration counted by its source", func() bool {
		all = c.scrapeAll(t)
		for _, n := range c.Nodes() {
			v, _ := all[n.Name()].Value("hostmesh_migrations_total", "result", "succeeded")
			if int(v) != succeeded[n.Name()] {
				return false
			}
		}
		return true
	})
	for _, name := range []string{"hostmesh_migrations_total", "hostmesh_migration_retries_total"} {
		for _, res := range []string{"failed", "cancelled"} {
			if v := sumOver(all, name, "result", res); v != 0 {
				t.Errorf("%s{result=%q} = %g, want 0", name, res, v)
			}
		}
	}
	if v := sumOver(all, "hostmesh_migration_retries_total"); v != 0 {
		t.Errorf("retries = %g, want 0", v)
	}
	// One histogram observation per succeeded migration, with real values.
	for _, h := range []string{"hostmesh_migration_duration_seconds", "hostmesh_migration_data_sent_bytes"} {
		n, sum := histOver(all, h, "result", "succeeded")
		if int(n) != total || sum <= 0 {
			t.Errorf("%s{result=succeeded}: %d observations summing to %g, want %d and > 0", h, n, sum, total)
		}
	}
	if n, sum := histOver(all, "hostmesh_migration_downtime_seconds"); int(n) != total || sum <= 0 {
		t.Errorf("downtime: %d observations summing to %g, want %d and > 0", n, sum, total)
	}
	if n, _ := histOver(all, "hostmesh_migration_queue_wait_seconds"); int(n) != total {
		t.Errorf("queue wait: %d observations, want %d", n, total)
	}
	// The refusal is counted by the host whose API refused, under its check.
	if v, _ := all["h3"].Value("hostmesh_migration_refusals_total", "check", "distinct-hosts"); v != 1 {
		t.Errorf("h3 refusals{distinct-hosts} = %g, want 1\n%s", v, all["h3"].String("hostmesh_migration_refusals_total"))
	}
	if v := sumOver(all, "hostmesh_migration_refusals_total"); v != 1 {
		t.Errorf("refusals over the mesh = %g, want 1", v)
	}

	// State series: the leader only, with the drain's figures.
	leader := c.Leader(10 * time.Second).Name()
	for name, ms := range all {
		_, has := ms.Value("hostmesh_host_state")
		if has != (name == leader) {
			t.Errorf("%s exports host states: %v (leader is %s)", name, has, leader)
		}
	}
	lm := all[leader]
	want := []struct {
		name   string
		labels []string
		v      float64
	}{
		{"hostmesh_vms", nil, 6},
		{"hostmesh_split_brain_alarm", nil, 0},
		{"hostmesh_hosts", []string{"state", "Up"}, 2},
		{"hostmesh_hosts", []string{"state", "Maintenance"}, 1},
		{"hostmesh_host_state", []string{"host", "h2", "state", "Maintenance"}, 1},
		{"hostmesh_host_state", []string{"host", "h2", "state", "Up"}, 0},
		{"hostmesh_host_vms", []string{"host", "h2"}, 0},
		{"hostmesh_host_vms", nil, 6},
		{"hostmesh_host_memory_bytes", []string{"host", "h1"}, 16384 << 20},
		{"hostmesh_host_cpus", []string{"host", "h1"}, 32},
		{"hostmesh_host_migration_slots_limit", []string{"host", "h1", "direction", "out"}, 2},
		{"hostmesh_host_migration_slots_used", nil, 0},
		{"hostmesh_cluster_migration_slots_limit", []string{"cluster", "c1"}, 5},
		{"hostmesh_cluster_migration_slots_used", []string{"cluster", "c1"}, 0},
		{"hostmesh_migration_queue_length", []string{"cluster", "c1"}, 0},
		{"hostmesh_drain_state", []string{"host", "h2", "state", "done"}, 1},
		{"hostmesh_drain_state", []string{"host", "h2", "state", "active"}, 0},
		{"hostmesh_drain_vms", []string{"host", "h2", "state", "moved"}, float64(onH2)},
		{"hostmesh_drain_vms", []string{"host", "h2", "state", "pending"}, 0},
		{"hostmesh_drain_vms", []string{"host", "h2", "state", "unmovable"}, 0},
	}
	for _, w := range want {
		if v, ok := lm.Value(w.name, w.labels...); !ok || v != w.v {
			t.Errorf("leader %s%v = %g (present %v), want %g", w.name, w.labels, v, ok, w.v)
		}
	}
	// Every series the alert rules and the Grafana dashboard read is one
	// meshd exports (histograms and summaries by their family name).
	exported := map[string]bool{}
	for _, ms := range append([]Metrics{running}, all["h1"], all["h2"], all["h3"]) {
		for _, name := range ms.Names() {
			exported[name] = true
		}
	}
	for _, f := range []string{"../deploy/prometheus/alerts.yml", "../deploy/grafana/hostmesh.json"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range seriesName.FindAllString(string(data), -1) {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")
			if !exported[name] && !exported[base] {
				t.Errorf("%s reads %s, which no meshd exported", f, name)
			}
		}
	}

	// Every host: Raft, gossip, inventory, Go and process series.
	for name, ms := range all {
		for _, w := range []struct {
			metric string
			labels []string
			min    float64
		}{
			{"hostmesh_raft_leader_changes_total", nil, 1},
			{"hostmesh_raft_leader_known", nil, 1},
			{"hostmesh_raft_applied_index", nil, 1},
			{"hostmesh_raft_peers", []string{"suffrage", "voter"}, 3},
			{"hostmesh_gossip_members", []string{"status", "alive"}, 3},
			{"hostmesh_hypervisor_up", nil, 1},
			{"hostmesh_inventory_last_success_timestamp_seconds", nil, float64(time.Now().Add(-time.Minute).Unix())},
			{"hostmesh_replica_migrations_created", nil, float64(total)},
			{"go_goroutines", nil, 1},
			{"process_cpu_seconds_total", nil, 0},
		} {
			if v, ok := ms.Value(w.metric, w.labels...); !ok || v < w.min {
				t.Errorf("%s: %s%v = %g (present %v), want at least %g", name, w.metric, w.labels, v, ok, w.min)
			}
		}
		// Raft's own timers through the go-metrics sink (process-wide).
		for _, f := range []string{"hostmesh_raft_commitTime", "hostmesh_raft_state_leader"} {
			if _, ok := ms[f]; !ok {
				t.Errorf("%s: no %s among %s", name, f, fmt.Sprint(ms.Names()))
			}
		}
		for _, f := range ms.Names() {
			if strings.Contains(f, "replication_heartbeat") || strings.Contains(f, "udp_sent") {
				t.Errorf("%s exports %s: the go-metrics filter should drop per-heartbeat and per-packet series", name, f)
			}
		}
	}

	// A split brain: the same UUID starts on h3 while h1 runs it. The
	// leader's gauge counts it until one copy stops.
	var vm fsm.VM
	l.FSM().Read(func(s *fsm.State) {
		for _, v := range s.VMs {
			if v.Host == "h1" {
				vm = *v
			}
		}
	})
	twin := simVM(vm.Name+"-twin", 256)
	twin.UUID = vm.UUID
	h3, _ := c.Reg.Host("h3")
	if err := h3.Define(twin); err != nil {
		t.Fatal(err)
	}
	splitBrain := func() float64 {
		ms, err := c.Scrape(c.Leader(10 * time.Second).APIAddr())
		if err != nil {
			t.Fatal(err)
		}
		v, _ := ms.Value("hostmesh_split_brain_alarm")
		return v
	}
	c.WaitFor(20*time.Second, "hostmesh_split_brain_alarm 1 on the leader", func() bool { return splitBrain() == 1 })
	if err := h3.Remove(twin.Name); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(20*time.Second, "hostmesh_split_brain_alarm back to 0", func() bool { return splitBrain() == 0 })
}

// BenchmarkScrapeLeader100VMs times one scrape of the leader's /metrics
// with 102 VMs on 3 hosts, and reports its size.
func BenchmarkScrapeLeader100VMs(b *testing.B) {
	c := New(b, Options{Hosts: 3, VMsPerHost: 34, VMMemMiB: 256})
	l := c.Leader(10 * time.Second)
	c.WaitFor(30*time.Second, "102 VMs", func() bool { return len(l.FSM().State().VMs) == 102 })
	var size int
	for b.Loop() {
		text, err := c.Client(l.APIAddr()).Metrics(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		size = len(text)
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}
