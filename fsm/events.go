package fsm

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The event log: every change of the state that an operator may ask about
// later (who queued this migration, when did the drain get stuck, which
// host ran the VM twice) is an Event, recorded by Apply from the command,
// so every replica holds the same log: times come from the commands,
// never from a clock. It is bounded (a ring of MaxEvents), replicated in
// snapshots, and left out of State.Clone: the scheduler's and the API's
// copies never read it, and copying it with every plan would cost the
// leader for nothing. Read it with FSM.Events.
//
// Events are recorded from log version 2 on (see LogVersion): a v1 log's
// replicas recorded none, and a replica replaying it must not differ.
//
// A new kind of event: call s.emit from the handler, after every check,
// with the command's time and actor; add the kind below.

// MaxEvents bounds the event log: at about 300 bytes an event, 2,000 take
// some 600 KiB of every replica's memory and snapshot, and hold a day of
// a busy mesh's migrations (each writes 4 to 8 events).
const MaxEvents = 2000

// Event kinds.
const (
	EventLeaderElected     = "leader.elected"
	EventHostJoined        = "host.joined"
	EventHostState         = "host.state"
	EventHostActivated     = "host.activated"
	EventHostRemoved       = "host.removed"
	EventHostInventory     = "host.inventory"
	EventClusterSet        = "cluster.set"
	EventMigrationQueued   = "migration.queued"
	EventMigrationGranted  = "migration.granted"
	EventMigrationProgress = "migration.progress"
	EventMigrationPostCopy = "migration.postcopy"
	EventCancelRequested   = "migration.cancel-requested"
	EventMigrationRetried  = "migration.retried"
	EventMigrationSucceded = "migration.succeeded"
	EventMigrationFailed   = "migration.failed"
	EventMigrationCancel   = "migration.cancelled"
	EventDrainStarted      = "drain.started"
	EventDrainUnmovable    = "drain.unmovable"
	EventDrainDone         = "drain.done"
	EventDrainStuck        = "drain.stuck"
	EventDrainCancelled    = "drain.cancelled"
	EventAlarmRaised       = "alarm.raised"
	EventAlarmCleared      = "alarm.cleared"
	EventVMSettings        = "vm.settings"
	EventAffinityCreated   = "affinity.created"
	EventAffinityDeleted   = "affinity.deleted"
)

// Event is one change of the state.
type Event struct {
	// Seq numbers events from 1, without gaps; readers ask for the
	// events after the last Seq they saw.
	Seq uint64 `json:"seq"`
	// Index is the Raft index of the entry that made the change.
	Index uint64    `json:"index"`
	Time  time.Time `json:"time"`
	// Actor is who asked for the change (see the commands' Actor), or
	// the host that reported it ("host h2").
	Actor string `json:"actor,omitempty"`
	Kind  string `json:"kind"`
	// The objects: the hosts involved (a migration's source first), the
	// VM (name and UUID), the migration, the drained host.
	Hosts     []string `json:"hosts,omitempty"`
	VM        string   `json:"vm,omitempty"`
	VMUUID    string   `json:"vm_uuid,omitempty"`
	Migration string   `json:"migration,omitempty"`
	Drain     string   `json:"drain,omitempty"`
	Message   string   `json:"message"`
}

// EventLog is the bounded ring of the last MaxEvents events.
type EventLog struct {
	buf   []Event // oldest at start
	start int
	next  uint64 // Seq of the next event
}

func newEventLog() *EventLog { return &EventLog{next: 1} }

// add appends e, numbering it, and drops the oldest event when full.
func (l *EventLog) add(e Event) {
	e.Seq = l.next
	l.next++
	if len(l.buf) < MaxEvents {
		l.buf = append(l.buf, e)
		return
	}
	l.buf[l.start] = e
	l.start = (l.start + 1) % len(l.buf)
}

// each calls fn on the events in order, oldest first, until it returns false.
func (l *EventLog) each(fn func(e *Event) bool) {
	for i := range l.buf {
		if !fn(&l.buf[(l.start+i)%len(l.buf)]) {
			return
		}
	}
}

// Len is the number of events held.
func (l *EventLog) Len() int { return len(l.buf) }

// Last is the Seq of the newest event, 0 when none was ever recorded.
func (l *EventLog) Last() uint64 { return l.next - 1 }

func (l *EventLog) clone() *EventLog {
	c := &EventLog{next: l.next, buf: make([]Event, 0, len(l.buf))}
	l.each(func(e *Event) bool {
		v := *e
		v.Hosts = slices.Clone(e.Hosts)
		c.buf = append(c.buf, v)
		return true
	})
	return c
}

// eventLogJSON is how an event log is stored in snapshots.
type eventLogJSON struct {
	Next   uint64  `json:"next"`
	Events []Event `json:"events"`
}

// MarshalJSON writes the events oldest first.
func (l *EventLog) MarshalJSON() ([]byte, error) {
	out := eventLogJSON{Next: l.next, Events: make([]Event, 0, len(l.buf))}
	l.each(func(e *Event) bool { out.Events = append(out.Events, *e); return true })
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON wrote, keeping the newest
// MaxEvents; Check verifies the numbering.
func (l *EventLog) UnmarshalJSON(b []byte) error {
	var in eventLogJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	if len(in.Events) > MaxEvents {
		in.Events = in.Events[len(in.Events)-MaxEvents:]
	}
	l.buf, l.start, l.next = in.Events, 0, in.Next
	return nil
}

// check verifies the numbering: increasing, without gaps, below next.
func (l *EventLog) check() error {
	var prev uint64
	var err error
	l.each(func(e *Event) bool {
		if prev != 0 && e.Seq != prev+1 {
			err = fmt.Errorf("event %d follows event %d", e.Seq, prev)
			return false
		}
		prev = e.Seq
		return true
	})
	if err == nil && prev >= l.next {
		err = fmt.Errorf("event %d is not below the next number %d", prev, l.next)
	}
	if err == nil && l.next == 0 {
		err = fmt.Errorf("next event number is 0")
	}
	return err
}

// EventQuery selects events: those after Seq After, about Host (any of
// an event's hosts) and VM (its name or UUID), at most Limit (0: all),
// oldest first.
type EventQuery struct {
	After uint64
	Host  string
	VM    string
	Limit int
	// Last, when set, keeps the newest Last matching events rather than
	// the oldest Limit: what a reader who just arrived wants to see first
	// (the dashboard, `tail`), without fetching the whole ring.
	Last int
}

func (q EventQuery) match(e *Event) bool {
	if e.Seq <= q.After {
		return false
	}
	if q.Host != "" && !slices.Contains(e.Hosts, q.Host) {
		return false
	}
	if q.VM != "" && e.VM != q.VM && !strings.EqualFold(e.VMUUID, q.VM) {
		return false
	}
	return true
}

// Events returns the events the query selects and the Seq of the newest
// event of the log (to ask for what comes after).
func (f *FSM) Events(q EventQuery) ([]Event, uint64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	l := f.state.Events
	var out []Event
	l.each(func(e *Event) bool {
		if q.match(e) {
			v := *e
			v.Hosts = slices.Clone(e.Hosts)
			out = append(out, v)
		}
		return q.Last > 0 || q.Limit <= 0 || len(out) < q.Limit
	})
	if q.Last > 0 && len(out) > q.Last {
		out = slices.Clone(out[len(out)-q.Last:])
	}
	return out, l.Last()
}

// emit records an event of the entry being applied, under log version 2
// and later. A zero time takes the log's time (State.Time).
func (s *State) emit(e Event) {
	if !s.v2() || s.Events == nil {
		return
	}
	e.Index = s.index
	if e.Time.IsZero() {
		e.Time = s.Time
	}
	s.Events.add(e)
}

// tick advances the log's time to a command's time: the latest time any
// command carried, which events without a time of their own and the
// retention of finished migrations use. Replicas agree on it as they
// agree on the log.
func (s *State) tick(at time.Time) {
	if s.v2() && at.After(s.Time) {
		s.Time = at
	}
}

// leaderActor is the actor of a command the leader writes on its own.
func (s *State) leaderActor() string {
	if s.Leader == "" {
		return "leader"
	}
	return "host " + s.Leader
}

// migrationEvent fills an event's objects from a migration.
func migrationEvent(m *Migration, kind, actor string, at time.Time, format string, args ...any) Event {
	hosts := []string{m.Source}
	if m.Dest != "" && m.Dest != m.Source {
		hosts = append(hosts, m.Dest)
	}
	return Event{Time: at, Actor: actor, Kind: kind, Hosts: hosts, VM: m.VM, VMUUID: m.VMUUID, Migration: m.ID,
		Drain: m.Drain, Message: fmt.Sprintf(format, args...)}
}

// orActor returns actor, or def when the command named none.
func orActor(actor, def string) string {
	if actor == "" {
		return def
	}
	return actor
}
