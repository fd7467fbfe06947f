package fsm

import "slices"

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
	h, ok := s.Hosts[f.Name]
	if !ok {
		s.Hosts[f.Name] = &Host{HostFacts: f, State: HostUp, Gen: 1}
		return nil, nil
	}
	h.HostFacts = f
	h.Gen++
	return nil, nil
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
	h.State, h.StateReason = c.State, c.Reason
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
	delete(s.Hosts, c.Host)
	s.dropHostFromAlarms(c.Host)
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
	s.Clusters[cl.Name] = &cl
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
	var moved map[string]string
	if d := s.Drains[c.Host]; d != nil {
		if d.State == DrainActive {
			s.cancelDrainQueue(c.Host, d.CreatedAt)
			d.State = DrainCancelled
		}
		moved = d.Moved
	}
	h.State, h.StateReason = HostUp, ""
	return moved, nil
}
