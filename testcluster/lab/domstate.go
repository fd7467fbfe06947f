package lab

import (
	"context"
	"fmt"
	"strings"
)

// DomainState is what one lab host's libvirtd says of a guest when its
// console went silent: whether QEMU runs it, and why (virsh domstate
// --reason), and which job it has (virsh domjobinfo).
type DomainState struct {
	Host string
	// State is "running", "paused", "shut off", ...; "" when the host
	// does not know the domain (or virsh failed: Err says).
	State string
	// Reason is libvirt's reason for the state: "migrated", "booted",
	// "post-copy", "post-copy failed", "migrating", ...
	Reason string
	// Job is the active job's type: "None", "Unbounded", ...; "" unknown.
	Job string
	Err error
}

func (s DomainState) String() string {
	switch {
	case s.State == "" && s.Err != nil:
		return fmt.Sprintf("%s: unknown (%v)", s.Host, s.Err)
	case s.State == "":
		return s.Host + ": not there"
	}
	return fmt.Sprintf("%s: %s (%s), job %s", s.Host, s.State, s.Reason, s.Job)
}

// DomainStates asks every host's libvirtd for the guest's state and active
// job. A host that does not know the domain gives an empty State.
func DomainStates(ctx context.Context, hosts []*Host, name string) []DomainState {
	out := make([]DomainState, 0, len(hosts))
	for _, h := range hosts {
		s := DomainState{Host: h.Name}
		list, err := h.Virsh(ctx, "list", "--all", "--name")
		if err != nil {
			s.Err = err
			out = append(out, s)
			continue
		}
		if !hasLine(list, name) {
			out = append(out, s)
			continue
		}
		st, err := h.Virsh(ctx, "domstate", "--reason", name)
		if err != nil {
			s.Err = err
			out = append(out, s)
			continue
		}
		s.State, s.Reason = parseDomState(st)
		if job, err := h.Virsh(ctx, "domjobinfo", name); err == nil {
			s.Job = parseJobType(job)
		} else {
			s.Err = err
		}
		out = append(out, s)
	}
	return out
}

// RunsSettled returns the one host on which libvirt runs the guest with
// nothing of a migration left: running, not paused, for a reason other
// than post-copy (a post-copy destination whose pages stopped coming runs a
// guest that cannot make progress: hostmesh's business), with no active
// job, and no other host running or holding it paused. ok is false for
// anything else, and when a host could not be asked.
//
// A guest in that state whose console went silent has hung in its own
// kernel: QEMU 7.2's software emulation does that after a move now and
// then, as it panics (lab.md); a paused, post-copy or doubly-held guest is
// never taken for it.
func RunsSettled(states []DomainState) (host string, ok bool) {
	active := 0
	var run DomainState
	for _, s := range states {
		switch {
		case s.Err != nil && s.State == "":
			return "", false // not known everywhere: no verdict
		case s.State == "running" || s.State == "paused" || s.State == "in shutdown" || s.State == "pmsuspended":
			active++
			run = s
		}
	}
	if active == 1 && run.State == "running" && !strings.Contains(run.Reason, "post-copy") &&
		run.Reason != "migrating" && run.Job == "None" {
		return run.Host, true
	}
	return "", false
}

// parseDomState splits virsh domstate --reason's "running (migrated)".
func parseDomState(out string) (state, reason string) {
	out = strings.TrimSpace(out)
	if i := strings.LastIndex(out, " ("); i >= 0 && strings.HasSuffix(out, ")") {
		return out[:i], out[i+2 : len(out)-1]
	}
	return out, ""
}

// parseJobType reads "Job type: None" from virsh domjobinfo.
func parseJobType(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "Job type" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func hasLine(out, want string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) == want {
			return true
		}
	}
	return false
}

// States asks every host of the guest's lab (its own host alone for a guest
// the lab did not define) what libvirt says of it.
func (g *Guest) States(ctx context.Context) []DomainState {
	hosts := []*Host{g.Host}
	if g.lab != nil {
		hosts = g.lab.Hosts
	}
	return DomainStates(ctx, hosts, g.Spec.Name)
}
