package fsm

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// scanIndex is the index of VMs by host that a full scan of s.VMs gives.
func scanIndex(s *State) map[string]map[string]struct{} {
	idx := map[string]map[string]struct{}{}
	for k, vm := range s.VMs {
		if idx[vm.Host] == nil {
			idx[vm.Host] = map[string]struct{}{}
		}
		idx[vm.Host][k] = struct{}{}
	}
	return idx
}

// checkIndex fails the test unless s's index is what a full scan gives,
// and VMsOn answers from it what it answers from a scan, for every host.
func checkIndex(t *testing.T, s *State, when string) {
	t.Helper()
	if s.byHost == nil {
		t.Fatalf("%s: the state has no index", when)
	}
	want := scanIndex(s)
	if !reflect.DeepEqual(s.byHost, want) {
		t.Fatalf("%s: index differs from a scan:\nindex %v\nscan  %v", when, s.byHost, want)
	}
	cpus := map[string]map[string]int{}
	for _, vm := range s.VMs {
		if vm.CPUXML == "" {
			continue
		}
		if cpus[vm.Host] == nil {
			cpus[vm.Host] = map[string]int{}
		}
		cpus[vm.Host][vm.CPUXML]++
	}
	if !reflect.DeepEqual(s.byHostCPU, cpus) {
		t.Fatalf("%s: CPU index differs from a scan:\nindex %v\nscan  %v", when, s.byHostCPU, cpus)
	}
	scan := *s
	scan.byHost, scan.byHostCPU = nil, nil
	for _, h := range slices.Sorted(maps.Keys(s.Hosts)) {
		if got, want := s.vmKeysOn(h), scan.vmKeysOn(h); !slices.Equal(got, want) {
			t.Fatalf("%s: vmKeysOn(%s) = %v from the index, %v from a scan", when, h, got, want)
		}
		got, want := slices.Sorted(s.GuestCPUs(h)), slices.Sorted(scan.GuestCPUs(h))
		if !slices.Equal(got, want) {
			t.Fatalf("%s: GuestCPUs(%s) = %v from the index, %v from a scan", when, h, got, want)
		}
	}
}

// Two guest CPU definitions the random reports give their VMs.
const (
	testCPUA = "<cpu mode='custom'><model>Skylake-Client</model></cpu>"
	testCPUB = "<cpu mode='custom'><model>Haswell</model></cpu>"
)

// mutate applies one random command that may add, drop or move VMs:
// inventory reports (of VMs other hosts hold too), hosts going Down and
// Up, migrations granted and finished, drains. Refused commands are fine:
// they must leave the index as they leave the state.
func mutate(t *testing.T, f *FSM, r *rand.Rand, hosts, names []string, at time.Time) {
	t.Helper()
	h := hosts[r.IntN(len(hosts))]
	switch r.IntN(6) {
	case 0, 1:
		var list []VM
		for _, n := range names {
			if r.IntN(4) == 0 {
				st := VMRunning
				if r.IntN(5) == 0 {
					st = VMShutoff
				}
				v := testVM(n, st)
				// A VM's CPU definition may change from report to
				// report, or be absent: the counts must follow.
				v.CPUXML = []string{"", testCPUA, testCPUB}[r.IntN(3)]
				list = append(list, v)
			}
		}
		run(t, f, CmdSyncVMs, SyncVMs{Host: h, VMs: list, Index: f.Index(), At: at})
	case 2:
		st := []HostState{HostDown, HostUp}[r.IntN(2)]
		run(t, f, CmdSetHostState, SetHostState{Host: h, State: st, At: at})
	case 3:
		var keys []string
		f.Read(func(s *State) { keys = slices.Sorted(maps.Keys(s.VMs)) })
		if len(keys) == 0 {
			return
		}
		dest := hosts[r.IntN(len(hosts))]
		res := run(t, f, CmdEnqueue, Enqueue{VM: keys[r.IntN(len(keys))], Dest: dest, At: at})
		id, ok := res.Value.(string)
		if res.Err != nil || !ok {
			return
		}
		run(t, f, CmdGrant, Grant{ID: id, Dest: dest, BandwidthMiB: 32, At: at})
		end := []MigrationState{MigSucceeded, MigFailed}[r.IntN(2)]
		run(t, f, CmdFinish, Finish{ID: id, Attempt: 1, State: end, At: at})
	case 4:
		run(t, f, CmdStartDrain, StartDrain{Host: h, At: at})
	case 5:
		run(t, f, CmdActivate, Activate{Host: h, At: at})
	}
}

// TestHostIndexFollowsEveryMutation checks the index of VMs by host
// against a full scan after each of many random commands, in a clone,
// and after a snapshot's restore, where it is rebuilt.
func TestHostIndexFollowsEveryMutation(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 14))
			f := newFSM(t)
			hosts := []string{"h1", "h2", "h3", "h4", "h5"}
			for _, h := range hosts {
				must(t, f, CmdUpsertHost, UpsertHost{Facts: host(h, "c1", 1<<20)})
			}
			must(t, f, CmdSetCluster, SetCluster{Cluster: DefaultCluster("c1")})
			var names []string
			for i := range 30 {
				names = append(names, fmt.Sprintf("vm%02d", i))
			}
			moved := 0
			for i := range 400 {
				at := t0.Add(time.Duration(i) * time.Second)
				before := map[string]string{}
				f.Read(func(s *State) {
					for k, vm := range s.VMs {
						before[k] = vm.Host
					}
				})
				mutate(t, f, r, hosts, names, at)
				f.Read(func(s *State) {
					checkIndex(t, s, fmt.Sprintf("step %d", i))
					for k, vm := range s.VMs {
						if h, ok := before[k]; ok && h != vm.Host {
							moved++
						}
					}
				})
			}
			// The random walk must have moved VMs between hosts, or it
			// checked only adds and drops.
			if moved == 0 {
				t.Fatal("no VM changed host in 400 commands")
			}
			c := f.State()
			checkIndex(t, c, "clone")
			var k string
			for k = range c.VMs {
				break
			}
			c.MoveVM(k, "h-elsewhere")
			checkIndex(t, c, "clone after MoveVM")
			f.Read(func(s *State) { checkIndex(t, s, "original after the clone's MoveVM") })

			g := New()
			g.SetFailStop(func(err error) { t.Errorf("replica stopped: %v", err) })
			if err := g.Restore(io.NopCloser(bytes.NewReader(persist(t, f)))); err != nil {
				t.Fatal(err)
			}
			g.Read(func(s *State) { checkIndex(t, s, "restored") })
			for i := range 100 {
				mutate(t, g, r, hosts, names, t0.Add(time.Hour+time.Duration(i)*time.Second))
				g.Read(func(s *State) { checkIndex(t, s, fmt.Sprintf("restored, step %d", i)) })
			}
		})
	}
}

// meshState is a 200-host mesh of 50 VMs a host, the issue-14 target,
// built through Apply (indexed) and each host's report.
func meshState(b *testing.B) (*State, map[string][]VM) {
	b.Helper()
	s := NewState()
	s.indexVMs()
	apply := func(ct CommandType, p any) {
		data, err := Encode(ct, p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ApplyTo(s, s.index+1, data); err != nil {
			b.Fatal(err)
		}
	}
	apply(CmdLeaderElected, LeaderElected{Leader: "h000", Version: LogVersion, At: t0})
	reports := map[string][]VM{}
	for h := range 200 {
		name := fmt.Sprintf("h%03d", h)
		apply(CmdUpsertHost, UpsertHost{Facts: host(name, "c1", 1<<20)})
		for v := range 50 {
			vm := testVM(fmt.Sprintf("%s-vm%02d", name, v), VMRunning)
			vm.CPUXML = []string{testCPUA, testCPUB}[v%2]
			reports[name] = append(reports[name], vm)
		}
		apply(CmdSyncVMs, SyncVMs{Host: name, VMs: reports[name], At: t0})
	}
	return s, reports
}

// BenchmarkHostPass measures the per-host passes at 200 hosts of 50 VMs
// with the index of VMs by host and with the full scan it replaced:
// VMsOn (the inventory loop's, every host every 2 s), the apply of a
// host's unchanged inventory report (every replica, every report), and
// ClusterCPUs, the distinct guest CPU definitions of a cluster that
// node's cpuFacts gathers every inventory pass (scan: its loop before the
// index, over every VM).
func BenchmarkHostPass(b *testing.B) {
	s, reports := meshState(b)
	scan := s.Clone()
	scan.byHost, scan.byHostCPU = nil, nil
	for _, c := range []struct {
		name string
		s    *State
	}{{"scan", scan}, {"index", s}} {
		b.Run("VMsOn/"+c.name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if n := len(c.s.VMsOn(fmt.Sprintf("h%03d", i%200))); n != 50 {
					b.Fatalf("%d VMs on a host, want 50", n)
				}
			}
		})
		b.Run("ClusterCPUs/"+c.name, func(b *testing.B) {
			for b.Loop() {
				distinct := map[string]struct{}{}
				if c.s.byHost == nil {
					for _, vm := range c.s.VMs {
						if vm.CPUXML == "" {
							continue
						}
						if _, ok := distinct[vm.CPUXML]; ok {
							continue
						}
						if h := c.s.Hosts[vm.Host]; h != nil && h.Cluster == "c1" {
							distinct[vm.CPUXML] = struct{}{}
						}
					}
				} else {
					for name, h := range c.s.Hosts {
						if h.Cluster != "c1" {
							continue
						}
						for x := range c.s.GuestCPUs(name) {
							distinct[x] = struct{}{}
						}
					}
				}
				if len(distinct) != 2 {
					b.Fatalf("%d distinct CPU definitions, want 2", len(distinct))
				}
			}
		})
		b.Run("SyncVMs/"+c.name, func(b *testing.B) {
			data := map[string][]byte{}
			for h, vms := range reports {
				d, err := Encode(CmdSyncVMs, SyncVMs{Host: h, VMs: vms, At: t0})
				if err != nil {
					b.Fatal(err)
				}
				data[h] = d
			}
			for i := 0; b.Loop(); i++ {
				if _, err := ApplyTo(c.s, c.s.index+1, data[fmt.Sprintf("h%03d", i%200)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
