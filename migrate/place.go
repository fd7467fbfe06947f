package migrate

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/hostmesh/hostmesh/fsm"
)

// ErrNoHost means no host of the VM's cluster passes every check.
var ErrNoHost = errors.New("no host can take the vm")

// ErrUnknownVM means placement was asked for a VM the state does not know.
var ErrUnknownVM = errors.New("unknown vm")

// Score weights, in GiB of free memory: one VM already running on a host costs
// as much as 1 GiB of free memory, one migration already headed there as much
// as 2 GiB (it also competes for the host's network and incoming slots). Free
// memory dominates, but between hosts a few GiB apart the emptier one wins:
// the spread oVirt's "even distribution" aims for.
//
// A soft affinity rule a host would break costs weightSoftRule: more than
// any difference of load between hosts, so a host that keeps the rule
// wins whenever one passes the checks, and one that breaks it is the
// last resort rather than a refusal.
const (
	weightPerVM       = 1.0
	weightPerIncoming = 2.0
	weightSoftRule    = 1 << 20
)

// Candidate is one possible destination with every check's result. Score
// orders passing candidates (higher is better); it is also filled for failing
// hosts so a dry run shows how they would rank once fixed.
type Candidate struct {
	Host    string        `json:"host"`
	Score   float64       `json:"score"`
	Results []CheckResult `json:"results"`
	OK      bool          `json:"ok"`
}

// Placement is the chosen destination, why, and every host considered
// (passing ones first, best first; then failing ones by name).
type Placement struct {
	Host       string      `json:"host"`
	Reason     string      `json:"reason"`
	Candidates []Candidate `json:"candidates"`
}

// Place picks the destination for the VM with key vm (fsm.VMKey) among the
// other hosts of its cluster,
// skipping exclude (hosts tried before). It filters by the prerequisite checks
// and weighs the rest; ties go to the lower host name so every replica agrees.
// The error wraps ErrNoHost and names each host with its first failed check.
func Place(st *fsm.State, vm string, exclude []string) (Placement, error) {
	return place(st, vm, "", exclude)
}

// DryRun evaluates every other host of the VM's cluster, passing or not, for
// `meshctl migrate --dry-run`. It returns nil when the VM or its host is unknown.
func DryRun(st *fsm.State, vm string) []Candidate {
	v := st.VMs[vm]
	if v == nil || st.Hosts[v.Host] == nil {
		return nil
	}
	return evaluate(st, v, vm, "", nil)
}

// load is what placement weighs about one host.
type load struct {
	free     uint64 // MiB of room (see roomOn)
	vms      int    // VMs on the host that are not shut off
	incoming int    // migrations already headed there
}

func loadOf(st *fsm.State, host, own string) load {
	return loadWith(st, host, own, liveVMsOn(st)[host])
}

// fastPlacement turns on the two shortcuts of placement at scale (the
// counts of liveVMsOn, anyPasses for a migration waiting on a slot). Off,
// placement works as it did before them: the drain plan benchmark measures
// both in one run (BenchmarkPlanDrain), and they must decide alike.
var fastPlacement = true

// loadWith is loadOf with the host's count of VMs that are not shut off
// given (liveVMsOn): evaluate scores every host of the cluster, and
// counting each host's VMs by a scan of every VM made placement cost
// hosts × VMs map reads per migration (a 50-VM drain plan of a 100-host,
// 2,000-VM cluster took 4.8 s, three quarters of it in those scans).
func loadWith(st *fsm.State, host, own string, vms int) load {
	h := st.Hosts[host]
	if h == nil {
		return load{}
	}
	l := load{vms: vms}
	l.free = roomOn(st, h, host, own).room
	_, l.incoming = incoming(st, host, own)
	return l
}

// loadScan is loadOf as it was before liveVMsOn: the host's VMs found
// by a scan of every VM (fastPlacement off).
func loadScan(st *fsm.State, host, own string) load {
	h := st.Hosts[host]
	if h == nil {
		return load{}
	}
	l := load{}
	l.free = roomOn(st, h, host, own).room
	_, l.incoming = incoming(st, host, own)
	for _, v := range st.VMsOn(host) {
		if v.State != fsm.VMShutoff {
			l.vms++
		}
	}
	return l
}

// liveVMsOn counts the VMs that are not shut off, by host, in one pass.
func liveVMsOn(st *fsm.State) map[string]int {
	out := make(map[string]int, len(st.Hosts))
	for _, v := range st.VMs {
		if v.State != fsm.VMShutoff {
			out[v.Host]++
		}
	}
	return out
}

func (l load) score() float64 {
	return float64(l.free)/1024 - weightPerVM*float64(l.vms) - weightPerIncoming*float64(l.incoming)
}

func (l load) String() string {
	return fmt.Sprintf("%d MiB room, %d VMs, %d incoming migrations", l.free, l.vms, l.incoming)
}

// evaluate checks and scores every host of the VM's cluster except its source
// and exclude, sorted: passing by score (then name), then failing by name.
func evaluate(st *fsm.State, v *fsm.VM, vm, own string, exclude []string) []Candidate {
	cluster := st.Hosts[v.Host].Cluster
	var out []Candidate
	counts := liveVMsOn(st)
	for _, h := range st.HostNames() {
		if h == v.Host || st.Hosts[h].Cluster != cluster || slices.Contains(exclude, h) {
			continue
		}
		res := checkFor(st, vm, h, own)
		l := loadWith(st, h, own, counts[h])
		if !fastPlacement {
			l = loadScan(st, h, own)
		}
		score := l.score() - weightSoftRule*float64(len(softBreaches(st, vm, h)))
		out = append(out, Candidate{Host: h, Score: score, Results: res, OK: Refusal(v.Name, h, res) == nil})
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.OK != b.OK {
			return a.OK
		}
		if a.OK && a.Score != b.Score {
			return a.Score > b.Score
		}
		return a.Host < b.Host
	})
	return out
}

// anyPasses says whether some host of the VM's cluster, other than its
// source and exclude, passes every check: whether place would find one,
// without checking and scoring every host. The scheduler asks it for a
// migration that waits on a slot, where only "can it go anywhere" matters
// (a drain's 48 waiting migrations each placed over 99 hosts at every
// pass was most of a drain plan's time).
func anyPasses(st *fsm.State, vm, own string, exclude []string) bool {
	v := st.VMs[vm]
	if v == nil || st.Hosts[v.Host] == nil {
		return false
	}
	cluster := st.Hosts[v.Host].Cluster
	for _, h := range st.HostNames() {
		if h == v.Host || st.Hosts[h].Cluster != cluster || slices.Contains(exclude, h) {
			continue
		}
		if Refusal(v.Name, h, checkFor(st, vm, h, own)) == nil {
			return true
		}
	}
	return false
}

// place is Place for a migration already in the queue (own is its ID).
func place(st *fsm.State, vm, own string, exclude []string) (Placement, error) {
	v := st.VMs[vm]
	if v == nil {
		return Placement{}, fmt.Errorf("place vm %s: %w", vm, ErrUnknownVM)
	}
	if st.Hosts[v.Host] == nil {
		return Placement{}, fmt.Errorf("place vm %s: its host %q is unknown, so is its cluster: %w", v.Name, v.Host, ErrNoHost)
	}
	cands := evaluate(st, v, vm, own, exclude)
	passing := 0
	for _, c := range cands {
		if c.OK {
			passing++
		}
	}
	p := Placement{Candidates: cands}
	if passing == 0 {
		return p, noHostError(st, v, vm, cands, exclude)
	}
	p.Host = cands[0].Host
	p.Reason = fmt.Sprintf("%s: %s; best of %d passing hosts%s", p.Host, loadOf(st, p.Host, own), passing, softNote(st, vm, p.Host))
	return p, nil
}

// noHostError lists every host of the cluster, by name, with why it cannot
// take vm: its first failed check, or that it is the source or excluded.
func noHostError(st *fsm.State, v *fsm.VM, vm string, cands []Candidate, exclude []string) error {
	cluster := st.Hosts[v.Host].Cluster
	first := map[string]string{}
	for _, c := range cands {
		for _, r := range c.Results {
			if !r.OK {
				first[c.Host] = r.String()
				break
			}
		}
	}
	var why []string
	for _, h := range st.HostNames() {
		switch {
		case st.Hosts[h].Cluster != cluster:
		case h == v.Host:
			why = append(why, h+": source")
		case slices.Contains(exclude, h):
			why = append(why, h+": excluded (tried before)")
		default:
			why = append(why, h+": "+first[h])
		}
	}
	if len(why) == 1 {
		why = append(why, "no other host in the cluster")
	}
	return fmt.Errorf("place vm %s in cluster %s: %w: %s", v.Name, cluster, ErrNoHost, strings.Join(why, "; "))
}

// softNote says which soft affinity rules of the VM with key vm a move to
// host keeps and breaks, for the placement's reason ("" when it has none).
func softNote(st *fsm.State, vm, host string) string {
	var kept []string
	for _, name := range st.AffinityNames() {
		r := st.Affinity[name]
		if !r.Hard && slices.Contains(r.VMs, vm) {
			kept = append(kept, name)
		}
	}
	if len(kept) == 0 {
		return ""
	}
	broken := softBreaches(st, vm, host)
	kept = slices.DeleteFunc(kept, func(n string) bool { return slices.Contains(broken, n) })
	note := ""
	if len(kept) > 0 {
		note += "; keeps soft affinity rule " + strings.Join(kept, ", ")
	}
	if len(broken) > 0 {
		note += "; breaks soft affinity rule " + strings.Join(broken, ", ") + " (no passing host keeps it)"
	}
	return note
}
