package fsm

// applySyncVMs replaces one host's inventory with its hypervisor's report.
// Hypervisors are the truth about which guests run where, with two rules that
// keep every VM on exactly one host in the state:
//   - a VM held by a migration belongs to its source until Finish moves it,
//     whatever either side reports meanwhile (both list it around switch-over);
//   - a VM recorded on another host that is still alive keeps that record;
//     the report wins only when the recorded host is Down or Left.
func applySyncVMs(s *State, data []byte) (any, error) {
	var c SyncVMs
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	if _, ok := s.Hosts[c.Host]; !ok {
		return nil, rejectf("sync VMs of host %q: no such host", c.Host)
	}
	seen := map[string]bool{}
	for i := range c.VMs {
		v := c.VMs[i]
		if v.Name == "" {
			return nil, rejectf("sync VMs of host %q: VM %d has no name", c.Host, i)
		}
		if seen[v.Name] {
			return nil, rejectf("sync VMs of host %q: VM %q listed twice", c.Host, v.Name)
		}
		seen[v.Name] = true
	}
	for i := range c.VMs {
		v := c.VMs[i]
		v.Host = c.Host
		e := s.VMs[v.Name]
		if e != nil && e.Host != c.Host {
			if e.Migration != "" {
				continue
			}
			if h := s.Hosts[e.Host]; h != nil && h.State != HostDown && h.State != HostLeft {
				continue
			}
		}
		if e != nil {
			v.Migration = e.Migration
		} else {
			v.Migration = ""
		}
		s.VMs[v.Name] = &v
	}
	for _, vm := range s.VMsOn(c.Host) {
		if !seen[vm.Name] && vm.Migration == "" {
			delete(s.VMs, vm.Name)
		}
	}
	return nil, nil
}
