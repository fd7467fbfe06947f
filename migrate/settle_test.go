package migrate

import (
	"strings"
	"testing"

	"github.com/hostmesh/hostmesh/fsm"
)

func TestSettle(t *testing.T) {
	running := &DomainStatus{Exists: true, State: fsm.VMRunning, Reason: "booted"}
	migrated := &DomainStatus{Exists: true, State: fsm.VMRunning, Reason: ReasonMigrated}
	migratingOut := &DomainStatus{Exists: true, State: fsm.VMRunning, Job: &RunningJob{Kind: JobMigrationOut}}
	incoming := &DomainStatus{Exists: true, State: fsm.VMPaused, Reason: ReasonMigrating, Incoming: true}
	pcSource := &DomainStatus{Exists: true, State: fsm.VMPaused, Reason: ReasonPostCopy, PostCopy: true, Job: &RunningJob{Kind: JobMigrationOut}}
	pcSourceNoJob := &DomainStatus{Exists: true, State: fsm.VMPaused, Reason: ReasonPostCopy, PostCopy: true}
	pcDest := &DomainStatus{Exists: true, State: fsm.VMRunning, Reason: ReasonPostCopy, PostCopy: true}
	pcSourceFailed := &DomainStatus{Exists: true, State: fsm.VMPaused, Reason: ReasonPostCopyFailed, PostCopyFailed: true, Job: &RunningJob{Kind: JobMigrationOut}}
	pcDestFailed := &DomainStatus{Exists: true, State: fsm.VMRunning, Reason: ReasonPostCopyFailed, PostCopyFailed: true}
	shutoff := &DomainStatus{Exists: true, State: fsm.VMShutoff}
	failedJob := &DomainStatus{Exists: true, State: fsm.VMRunning, Ended: &EndedJob{Kind: JobMigrationOut, Outcome: JobFailed, Error: "connection reset"}}
	none := &DomainStatus{}
	for _, c := range []struct {
		name     string
		src, dst *DomainStatus
		want     Verdict
		words    string
	}{
		{"job runs", migratingOut, incoming, VerdictRunning, "still runs"},
		{"job runs, dest unreachable", migratingOut, nil, VerdictRunning, ""},
		{"post-copy runs", pcSource, pcDest, VerdictRunning, ""},
		{"switched over", none, migrated, VerdictMoved, "runs on h2"},
		{"switched over, source unreachable", nil, migrated, VerdictMoved, "could not be read"},
		{"switched over, source defined but off", shutoff, migrated, VerdictMoved, ""},
		{"failed, dest leftover", failedJob, incoming, VerdictStayed, "connection reset"},
		{"failed, dest clean", running, none, VerdictStayed, "no migration job"},
		{"failed, dest unreachable", running, nil, VerdictStayed, ""},
		{"shut off on the source", shutoff, none, VerdictStayed, "not running"},
		{"both run", running, migrated, VerdictBoth, "both"},
		{"neither", none, none, VerdictNeither, "neither"},
		{"neither, dest has an incoming leftover", none, incoming, VerdictNeither, ""},
		{"post-copy broke", pcSourceFailed, pcDestFailed, VerdictPostCopyPaused, "waits"},
		{"post-copy broke, dest not yet told", pcSourceFailed, pcDest, VerdictPostCopyPaused, ""},
		{"post-copy broke, source gone", none, pcDestFailed, VerdictLost, "lacks the pages"},
		{"post-copy broke, dest gone", pcSourceFailed, none, VerdictLost, "stale"},
		{"post-copy, source gone", none, pcDest, VerdictLost, ""},
		{"post-copy broke, dest unreachable", pcSourceFailed, nil, VerdictUnknown, ""},
		{"post-copy between states", pcSourceNoJob, pcDest, VerdictUnknown, ""},
		{"post-copy on dest, source unreachable", nil, pcDest, VerdictUnknown, ""},
		{"incoming, source unreachable", nil, incoming, VerdictUnknown, ""},
		{"source unreachable, dest clean", nil, none, VerdictStayed, "never switched over"},
		{"source gone, dest unreachable", none, nil, VerdictUnknown, ""},
		{"both unreachable", nil, nil, VerdictUnknown, ""},
	} {
		got := Settle(c.src, c.dst, "h1", "h2")
		if got.Verdict != c.want || !strings.Contains(got.Reason, c.words) {
			t.Errorf("%s: %s %q, want %s mentioning %q", c.name, got.Verdict, got.Reason, c.want, c.words)
		}
	}
}
