package fsm

import (
	"fmt"
	"slices"
	"time"
)

func validHostState(st HostState) bool {
	switch st {
	case HostUp, HostPreparingForMaintenance, HostMaintenance, HostNonOperational, HostDown, HostLeft:
		return true
	}
	return false
}

func applyUpsertHost(s *State, data []byte) (any, error) {
	var c UpsertHost
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	f := c.Facts
	if f.Name == "" || f.Cluster == "" {
		return nil, rejectf("host facts need a name and a cluster (got name %q cluster %q)", f.Name, f.Cluster)
	}
	s.tick(c.At)
	h, ok := s.Hosts[f.Name]
	if !ok {
		h := &Host{HostFacts: f, State: HostUp, Gen: 1}
		if s.v2() {
			h.Since = s.Time
		}
		s.Hosts[f.Name] = h
		s.emit(Event{Time: c.At, Actor: s.leaderActor(), Kind: EventHostJoined, Hosts: []string{f.Name},
			Message: fmt.Sprintf("%s joined cluster %s (%s, %d CPUs, %d MiB)", f.Name, f.Cluster, f.Hypervisor, f.CPUs, f.MemTotalMiB)})
		return nil, nil
	}
	h.HostFacts = f
	h.Gen++
	return nil, nil
}

// moveHost puts a host in state st and returns the state it left.
func (s *State) moveHost(h *Host, st HostState, reason string) HostState {
	old := h.State
	h.State, h.StateReason = st, reason
	if old != st && s.v2() {
		h.Since = s.Time
	}
	return old
}

func applySetHostState(s *State, data []byte) (any, error) {
	var c SetHostState
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	h, ok := s.Hosts[c.Host]
	if !ok {
		return nil, rejectf("set state of host %q: no such host", c.Host)
	}
	if !validHostState(c.State) {
		return nil, rejectf("set state of host %q: unknown state %q", c.Host, c.State)
	}
	s.tick(c.At)
	if old := s.moveHost(h, c.State, c.Reason); old != c.State {
		msg := fmt.Sprintf("%s: %s → %s", h.Name, old, c.State)
		if c.Reason != "" {
			msg += " (" + c.Reason + ")"
		}
		s.emit(Event{Time: c.At, Actor: s.leaderActor(), Kind: EventHostState, Hosts: []string{h.Name}, Message: msg})
	}
	if c.State == HostDown {
		// Nobody can vouch for the VMs of a failed host until it reports again.
		for _, vm := range s.VMsOn(c.Host) {
			vm.State = VMUnknown
		}
	}
	return nil, nil
}

func applyRemoveHost(s *State, data []byte) (any, error) {
	var c RemoveHost
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	if _, ok := s.Hosts[c.Host]; !ok {
		return nil, rejectf("remove host %q: no such host", c.Host)
	}
	if vms := s.VMsOn(c.Host); len(vms) > 0 {
		return nil, rejectf("remove host %q: it still runs %d VMs (%s first)", c.Host, len(vms), vms[0].Name)
	}
	if s.v2() {
		for _, id := range s.Queue {
			if m := s.Migrations[id]; m != nil && (m.Source == c.Host || m.Dest == c.Host) {
				return nil, rejectf("remove host %q: migration %s (%s) still involves it", c.Host, id, m.State)
			}
		}
		delete(s.Drains, c.Host)
	}
	s.tick(c.At)
	delete(s.Hosts, c.Host)
	s.dropHostFromAlarms(c.Host, c.At)
	s.emit(Event{Time: c.At, Actor: orActor(c.Actor, s.leaderActor()), Kind: EventHostRemoved, Hosts: []string{c.Host},
		Message: fmt.Sprintf("%s removed from the mesh", c.Host)})
	return nil, nil
}

func applySetCluster(s *State, data []byte) (any, error) {
	var c SetCluster
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	cl := c.Cluster
	switch {
	case cl.Name == "":
		return nil, rejectf("set cluster: name is empty")
	case cl.MaxOutgoing < 1 || cl.MaxIncoming < 1 || cl.MaxConcurrent < 1:
		return nil, rejectf("set cluster %q: slot limits must be at least 1 (out %d, in %d, cluster %d)",
			cl.Name, cl.MaxOutgoing, cl.MaxIncoming, cl.MaxConcurrent)
	case cl.BandwidthMode != BandwidthFixed && cl.BandwidthMode != BandwidthAuto:
		return nil, rejectf("set cluster %q: bandwidth mode %q is neither %q nor %q",
			cl.Name, cl.BandwidthMode, BandwidthFixed, BandwidthAuto)
	case cl.BandwidthMode == BandwidthAuto && cl.MigrationNetMiB == 0:
		return nil, rejectf("set cluster %q: auto bandwidth needs the migration network's capacity", cl.Name)
	case cl.MigrationTransport != "" && cl.MigrationTransport != TransportTLS && cl.MigrationTransport != TransportPlain:
		return nil, rejectf("set cluster %q: migration transport %q is neither %q nor %q",
			cl.Name, cl.MigrationTransport, TransportTLS, TransportPlain)
	}
	cl.RequiredNetworks = slices.Clone(cl.RequiredNetworks)
	cl.CPUBaseline = slices.Clone(cl.CPUBaseline)
	// The computed CPU baseline belongs to SetCPUBaseline: keep it.
	cl.CPUBaselineXML, cl.CPUBaselineModel, cl.CPUBaselineFeatures = "", "", nil
	cl.CPUBaselineHosts, cl.CPUBaselineMode, cl.CPUBaselineAt = nil, "", time.Time{}
	if old := s.Clusters[cl.Name]; old != nil {
		cl.CPUBaselineXML, cl.CPUBaselineModel, cl.CPUBaselineFeatures = old.CPUBaselineXML, old.CPUBaselineModel, old.CPUBaselineFeatures
		cl.CPUBaselineHosts, cl.CPUBaselineMode, cl.CPUBaselineAt = old.CPUBaselineHosts, old.CPUBaselineMode, old.CPUBaselineAt
	}
	s.Clusters[cl.Name] = &cl
	s.tick(c.At)
	s.emit(Event{Time: c.At, Actor: c.Actor, Kind: EventClusterSet, Message: fmt.Sprintf(
		"cluster %s: %d out, %d in, %d at once per cluster; bandwidth %s %d MiB/s (network %d MiB/s); policy %s",
		cl.Name, cl.MaxOutgoing, cl.MaxIncoming, cl.MaxConcurrent, cl.BandwidthMode, cl.BandwidthMiB, cl.MigrationNetMiB, cl.Policy) + balanceNote(cl)})
	return nil, nil
}

func applyActivate(s *State, data []byte) (any, error) {
	var c Activate
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	h, ok := s.Hosts[c.Host]
	if !ok {
		return nil, rejectf("activate host %q: no such host", c.Host)
	}
	switch h.State {
	case HostMaintenance, HostPreparingForMaintenance, HostNonOperational:
	case HostUp:
		return nil, rejectf("activate host %q: already Up", c.Host)
	default:
		return nil, rejectf("activate host %q: it is %s; only a live host can be activated", c.Host, h.State)
	}
	s.tick(c.At)
	var moved map[string]string
	if d := s.Drains[c.Host]; d != nil {
		if d.State == DrainActive {
			// v1 had no time in Activate and ended the drain's queued
			// migrations at the drain's start; the log's time is truer.
			at := d.CreatedAt
			if s.v2() {
				at = s.Time
			}
			s.cancelDrainQueue(c.Host, at, c.Actor)
			d.State = DrainCancelled
			s.emit(Event{Time: c.At, Actor: c.Actor, Kind: EventDrainCancelled, Hosts: []string{c.Host}, Drain: c.Host,
				Message: fmt.Sprintf("drain of %s cancelled by activating the host", c.Host)})
		}
		moved = d.Moved
	}
	old := s.moveHost(h, HostUp, "")
	s.emit(Event{Time: c.At, Actor: c.Actor, Kind: EventHostActivated, Hosts: []string{c.Host},
		Message: fmt.Sprintf("%s activated: %s → Up", c.Host, old)})
	return moved, nil
}
