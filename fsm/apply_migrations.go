package fsm

import (
	"fmt"
	"slices"
	"time"
)

// maxAttempts bounds placements of one unpinned migration: the first, and one
// retry on another host after a failure (as oVirt's engine re-runs it once).
const maxAttempts = 2

func applyEnqueue(s *State, data []byte) (any, error) {
	var c Enqueue
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	s.tick(c.At)
	if c.Drain != "" {
		// A VM that appeared on a draining host: one that cannot move
		// is reported by the drain at once, which may then end.
		if k, vm, err := s.ResolveVM(c.VM); err == nil && vm.Migration == "" && s.NotMigratable(k) != "" {
			if d := s.Drains[c.Drain]; d != nil && d.State == DrainActive && vm.Host == c.Drain {
				d.Unmovable[vm.Name] = "migratable: " + s.NotMigratable(k)
				s.unmovableEvents(&Drain{Host: d.Host, Unmovable: map[string]string{vm.Name: d.Unmovable[vm.Name]}}, c.At, c.Actor)
				s.settleDrain(c.Drain, c.At, c.Actor)
				return "", nil
			}
		}
	}
	return s.enqueue(c)
}

// enqueue resolves the command's VM and queues its migration.
func (s *State) enqueue(c Enqueue) (string, error) {
	k, vm, err := s.ResolveVM(c.VM)
	if err != nil {
		return "", rejectf("migrate vm %q: %v", c.VM, err)
	}
	return s.enqueueVM(k, vm, c)
}

// enqueueVM validates and queues one migration of the VM with key k;
// shared by Enqueue and StartDrain.
func (s *State) enqueueVM(k string, vm *VM, c Enqueue) (string, error) {
	if vm.Migration != "" {
		return "", rejectf("migrate vm %q: already held by migration %s", vm.Name, vm.Migration)
	}
	if a := s.SplitBrain(k); a != nil {
		return "", rejectf("migrate vm %q: split brain: %s", vm.Name, a.Message)
	}
	if why := s.NotMigratable(k); why != "" {
		return "", rejectf("migrate vm %q: not migratable: %s", vm.Name, why)
	}
	src, ok := s.Hosts[vm.Host]
	if !ok {
		return "", rejectf("migrate vm %q: its host %q is unknown", vm.Name, vm.Host)
	}
	if c.Dest != "" {
		if _, ok := s.Hosts[c.Dest]; !ok {
			return "", rejectf("migrate vm %q to %q: no such host", vm.Name, c.Dest)
		}
	}
	policy, bw := s.MigrationSettings(k, src.Cluster, c.Policy, c.BandwidthMiB)
	s.Seq++
	id := fmt.Sprintf("m%d", s.Seq)
	var uuid string
	if s.v2() {
		// v1 knew no UUIDs: a migration of its log keeps only the name.
		uuid = vm.UUID
	}
	s.Migrations[id] = &Migration{
		ID: id, VM: vm.Name, VMUUID: uuid, Source: vm.Host, Dest: c.Dest, Cluster: src.Cluster,
		State: MigQueued, Policy: policy, BandwidthMiB: bw, Parallel: c.Parallel,
		Pinned: c.Dest != "", Drain: c.Drain, Attempt: 1, CreatedAt: c.At, RequestedBy: c.Actor,
	}
	vm.Migration = id
	s.Queue = append(s.Queue, id)
	m := s.Migrations[id]
	to := "the best host"
	if c.Dest != "" {
		to = c.Dest
	}
	why := ""
	if c.Drain != "" {
		why = " for the drain of " + c.Drain
	}
	s.emit(migrationEvent(m, EventMigrationQueued, c.Actor, c.At, "%s: vm %s queued to move from %s to %s%s (policy %s)",
		id, m.VM, m.Source, to, why, m.Policy))
	return id, nil
}

func applyGrant(s *State, data []byte) (any, error) {
	var c Grant
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	m, ok := s.Migrations[c.ID]
	if !ok {
		return nil, rejectf("grant migration %q: no such migration", c.ID)
	}
	if m.State != MigQueued {
		return nil, rejectf("grant migration %s: it is %s, not Queued", c.ID, m.State)
	}
	if _, ok := s.Hosts[c.Dest]; !ok {
		return nil, rejectf("grant migration %s: destination %q is unknown", c.ID, c.Dest)
	}
	if c.Dest == m.Source {
		return nil, rejectf("grant migration %s: destination %q is its source", c.ID, c.Dest)
	}
	if m.Pinned && c.Dest != m.Dest {
		return nil, rejectf("grant migration %s: pinned to %q, not %q", c.ID, m.Dest, c.Dest)
	}
	if a := s.SplitBrain(s.MigrationVMKey(m)); a != nil {
		return nil, rejectf("grant migration %s: split brain: %s", c.ID, a.Message)
	}
	// The destination's prerequisites too (same cluster, Up, networks,
	// storage, memory, CPU, cache modes), as the leader checked them: a
	// grant planned on a state that moved on, or by a deposed leader, must
	// not send a VM where it cannot run (v1 checked the slots only).
	if s.v2() && s.grantCheck != nil {
		if err := s.grantCheck(s, m, c.Dest); err != nil {
			return nil, rejectf("grant migration %s: %v", c.ID, err)
		}
	}
	// The slot limits are enforced here too, not only by the scheduler: a
	// stale or duplicated grant from a deposed leader can never exceed them.
	cl := s.Cluster(m.Cluster)
	u := s.Slots()
	switch {
	case u.Out[m.Source] >= cl.MaxOutgoing:
		return nil, rejectf("grant migration %s: host %s has %d of %d outgoing slots in use", c.ID, m.Source, u.Out[m.Source], cl.MaxOutgoing)
	case u.In[c.Dest] >= cl.MaxIncoming:
		return nil, rejectf("grant migration %s: host %s has %d of %d incoming slots in use", c.ID, c.Dest, u.In[c.Dest], cl.MaxIncoming)
	case u.Cluster[m.Cluster] >= cl.MaxConcurrent:
		return nil, rejectf("grant migration %s: cluster %s has %d of %d migrations running", c.ID, m.Cluster, u.Cluster[m.Cluster], cl.MaxConcurrent)
	}
	m.Dest, m.GrantedMiB, m.PlacementReason = c.Dest, c.BandwidthMiB, c.Reason
	m.State, m.StartedAt = MigRunning, c.At
	setShares(s, c.Reshare)
	s.tick(c.At)
	bw := "unlimited"
	if c.BandwidthMiB > 0 {
		bw = fmt.Sprintf("%d MiB/s", c.BandwidthMiB)
	}
	why := ""
	if c.Reason != "" {
		why = ": " + c.Reason
	}
	s.emit(migrationEvent(m, EventMigrationGranted, s.leaderActor(), c.At, "%s: vm %s %s → %s granted (attempt %d, %s)%s",
		m.ID, m.VM, m.Source, m.Dest, m.Attempt, bw, why))
	return nil, nil
}

func applyReshare(s *State, data []byte) (any, error) {
	var c Reshare
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	return setShares(s, c.Shares), nil
}

// setShares sets the cap of each listed migration that is still running and
// returns how many it set.
func setShares(s *State, shares []Share) int {
	n := 0
	for _, sh := range shares {
		if m := s.Migrations[sh.ID]; m != nil && m.State == MigRunning {
			m.GrantedMiB = sh.BandwidthMiB
			n++
		}
	}
	return n
}

func applyProgress(s *State, data []byte) (any, error) {
	var c ProgressUpdate
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	m, ok := s.Migrations[c.ID]
	if !ok {
		return nil, rejectf("progress of migration %q: no such migration", c.ID)
	}
	if m.State != MigRunning {
		return nil, rejectf("progress of migration %s: it is %s, not Running", c.ID, m.State)
	}
	if c.Attempt != 0 && c.Attempt != m.Attempt {
		return nil, rejectf("progress of migration %s: attempt %d is over (now %d)", c.ID, c.Attempt, m.Attempt)
	}
	old, wasEnding, wasSent := m.Progress, s.Ending(m), s.Sent(m)
	m.Progress = c.Progress
	s.progressEvents(m, old)
	if s.Ending(m) != wasEnding || s.Sent(m) != wasSent {
		// the migration lent its slot (or took it back): plan again
		return slotLent{}, nil
	}
	return nil, nil
}

// slotLent is what applyProgress returns when a sample moved a migration
// into (or out of) the end of its transfer, or found all of it sent:
// unlike other samples it can change a scheduling decision or the caps
// (see Ending and Sent).
type slotLent struct{}

// progressMilestones are the percentages whose crossing is an event: the
// event log shows a migration's course, not its every sample.
var progressMilestones = []float64{75, 50, 25}

// progressEvents records the milestone a sample crossed (the highest) and
// the switch to post-copy. A sample has no time of its own: the event's
// is the grant's plus the job's elapsed time.
func (s *State) progressEvents(m *Migration, old Progress) {
	p := m.Progress
	at := m.StartedAt.Add(time.Duration(p.ElapsedMs) * time.Millisecond)
	actor := "host " + m.Source
	for _, t := range progressMilestones {
		if old.Percent < t && p.Percent >= t {
			s.emit(migrationEvent(m, EventMigrationProgress, actor, at, "%s: vm %s at %.0f%% after %s: %s of %s sent, %.0f MiB/s, iteration %d",
				m.ID, m.VM, t, time.Duration(p.ElapsedMs)*time.Millisecond, mib(p.ProcessedBytes), mib(p.TotalBytes), p.MiBps, p.Iteration))
			break
		}
	}
	if !old.PostCopy && p.PostCopy {
		s.emit(migrationEvent(m, EventMigrationPostCopy, actor, at, "%s: vm %s switched to post-copy after %s: it runs on %s from now on",
			m.ID, m.VM, time.Duration(p.ElapsedMs)*time.Millisecond, m.Dest))
	}
}

func mib(b uint64) string { return fmt.Sprintf("%d MiB", b>>20) }

func applyFinish(s *State, data []byte) (any, error) {
	var c Finish
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	m, ok := s.Migrations[c.ID]
	if !ok {
		return nil, rejectf("finish migration %q: no such migration", c.ID)
	}
	if m.State.Final() {
		return nil, rejectf("finish migration %s: already %s", c.ID, m.State)
	}
	if !c.State.Final() {
		return nil, rejectf("finish migration %s: %q is not a final state", c.ID, c.State)
	}
	if c.Attempt == 0 && s.v2() {
		// A report without its attempt could end a retry it knows nothing of.
		return nil, rejectf("finish migration %s: the report names no attempt (the migration is at attempt %d)", c.ID, m.Attempt)
	}
	if c.Attempt != 0 && c.Attempt != m.Attempt {
		return nil, rejectf("finish migration %s: attempt %d is over (attempt %d is %s)", c.ID, c.Attempt, m.Attempt, m.State)
	}
	if c.State == MigSucceeded && m.State != MigRunning {
		return nil, rejectf("finish migration %s: only a Running migration can succeed (it is %s)", c.ID, m.State)
	}
	s.tick(c.At)
	actor := orActor(c.Actor, "host "+m.Source)
	vmKey := s.MigrationVMKey(m)
	vm := s.VMs[vmKey]
	if c.State == MigFailed && c.Retry && !m.Pinned && m.Attempt < maxAttempts && !m.CancelRequested {
		if m.Dest != "" && !slices.Contains(m.Tried, m.Dest) {
			m.Tried = append(m.Tried, m.Dest)
		}
		m.Reason = fmt.Sprintf("attempt %d to %s failed: %s; retrying on another host", m.Attempt, m.Dest, c.Reason)
		s.emit(migrationEvent(m, EventMigrationRetried, actor, c.At, "%s: vm %s: %s", m.ID, m.VM, m.Reason))
		m.Attempt++
		m.State, m.Dest, m.Progress = MigQueued, "", Progress{}
		return nil, nil
	}
	m.State, m.Reason, m.DowntimeMs, m.EndedAt = c.State, c.Reason, c.DowntimeMs, c.At
	m.Unsettled = ""
	s.dequeue(c.ID)
	defer s.finished(c.ID)
	if key := AlarmKey(AlarmMigrationUnsettled, s.MigrationVMKey(m)); s.Alarms[key] != nil {
		s.clearAlarm(key, "the migration ended "+string(c.State), c.At, orActor(c.Actor, "host "+m.Source))
	}
	if vm != nil && vm.Migration == c.ID {
		vm.Migration = ""
		if c.State == MigSucceeded {
			s.MoveVM(vmKey, m.Dest)
			vm.State = VMRunning
			if s.v2() {
				vm.MovedIndex = s.index
			}
		}
	}
	if c.State == MigSucceeded {
		m.Progress.Percent, m.Progress.RemainingBytes = 100, 0
	}
	switch c.State {
	case MigSucceeded:
		s.emit(migrationEvent(m, EventMigrationSucceded, actor, c.At, "%s: vm %s moved %s → %s in %s, downtime %d ms",
			m.ID, m.VM, m.Source, m.Dest, c.At.Sub(m.StartedAt).Round(time.Millisecond), c.DowntimeMs))
	case MigFailed:
		s.emit(migrationEvent(m, EventMigrationFailed, actor, c.At, "%s: vm %s failed to move from %s: %s; it stays on %s",
			m.ID, m.VM, m.Source, orNone(c.Reason), m.Source))
	default:
		s.emit(migrationEvent(m, EventMigrationCancel, actor, c.At, "%s: vm %s cancelled: %s", m.ID, m.VM, orNone(c.Reason)))
	}
	// Any migration off a draining host counts for its drain, whoever asked.
	if d := s.Drains[m.Source]; d != nil && d.State == DrainActive {
		switch c.State {
		case MigSucceeded:
			d.Moved[m.VM] = m.Source
			delete(d.Unmovable, m.VM)
		case MigFailed:
			d.Unmovable[m.VM] = c.Reason
			s.emit(Event{Time: c.At, Actor: actor, Kind: EventDrainUnmovable, Hosts: []string{m.Source}, VM: m.VM, VMUUID: m.VMUUID,
				Migration: m.ID, Drain: m.Source, Message: fmt.Sprintf("drain of %s: vm %s cannot move: %s", m.Source, m.VM, c.Reason)})
		}
		s.settleDrain(m.Source, c.At, actor)
	}
	return nil, nil
}

func applyCancel(s *State, data []byte) (any, error) {
	var c Cancel
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	m, ok := s.Migrations[c.ID]
	if !ok {
		return nil, rejectf("cancel migration %q: no such migration", c.ID)
	}
	if m.State.Final() {
		return nil, rejectf("cancel migration %s: already %s", c.ID, m.State)
	}
	s.tick(c.At)
	if m.State == MigRunning {
		// The source aborts the hypervisor job and then reports Finish.
		m.CancelRequested = true
		s.emit(migrationEvent(m, EventCancelRequested, c.Actor, c.At, "%s: vm %s: cancel requested; %s aborts the job",
			m.ID, m.VM, m.Source))
		return nil, nil
	}
	s.cancelQueued(m, c.At, c.Actor)
	s.settleDrain(m.Source, c.At, c.Actor)
	return nil, nil
}

// applyUnsettled records why a Running migration's outcome is not known,
// and raises or clears the migration-unsettled alarm about its VM.
func applyUnsettled(s *State, data []byte) (any, error) {
	var c Unsettled
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	m, ok := s.Migrations[c.ID]
	switch {
	case !ok:
		return nil, rejectf("unsettled migration %q: no such migration", c.ID)
	case m.State != MigRunning:
		return nil, rejectf("unsettled migration %s: it is %s, not Running", c.ID, m.State)
	case c.Attempt != m.Attempt:
		return nil, rejectf("unsettled migration %s: attempt %d is over (now %d)", c.ID, c.Attempt, m.Attempt)
	}
	s.tick(c.At)
	actor := orActor(c.Actor, "host "+m.Source)
	m.Unsettled = c.Reason
	key := AlarmKey(AlarmMigrationUnsettled, s.MigrationVMKey(m))
	if !c.Alarm {
		if s.Alarms[key] != nil {
			s.clearAlarm(key, orReason(c.Reason, "the hypervisors agree again"), c.At, actor)
		}
		return nil, nil
	}
	hosts := slices.Clone(c.Hosts)
	slices.Sort(hosts)
	a := s.Alarms[key]
	raised := a == nil
	if raised {
		a = &Alarm{Kind: AlarmMigrationUnsettled, VMUUID: s.MigrationVMKey(m), VM: m.VM, Since: c.At, Index: s.index}
		s.Alarms[key] = a
	}
	a.Hosts = hosts
	a.Message = fmt.Sprintf("migration %s of vm %s from %s to %s: %s", m.ID, m.VM, m.Source, m.Dest, c.Reason)
	if !raised {
		return nil, nil
	}
	s.emit(Event{Time: c.At, Actor: actor, Kind: EventAlarmRaised, Hosts: slices.Clone(hosts), VM: m.VM, VMUUID: m.VMUUID,
		Migration: m.ID, Message: "migration unsettled: " + a.Message})
	return nil, nil
}

// orReason returns why, or def when it is empty.
func orReason(why, def string) string {
	if why == "" {
		return def
	}
	return why
}
