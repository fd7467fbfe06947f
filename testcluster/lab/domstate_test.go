package lab

import "testing"

func TestParseDomState(t *testing.T) {
	for in, want := range map[string][2]string{
		"running (migrated)\n":      {"running", "migrated"},
		"paused (post-copy failed)": {"paused", "post-copy failed"},
		"shut off (destroyed)":      {"shut off", "destroyed"},
		"running":                   {"running", ""},
	} {
		if s, r := parseDomState(in); s != want[0] || r != want[1] {
			t.Errorf("parseDomState(%q) = %q, %q; want %q, %q", in, s, r, want[0], want[1])
		}
	}
	if got := parseJobType("Job type:         None        \n\n"); got != "None" {
		t.Errorf("parseJobType = %q, want None", got)
	}
	if got := parseJobType("Job type:         Unbounded\nOperation:        Outgoing migration\n"); got != "Unbounded" {
		t.Errorf("parseJobType = %q, want Unbounded", got)
	}
}

// TestRunsSettled: only a guest running on exactly one host, not in post-copy and
// with no job, is taken for a guest hung under TCG; anything hostmesh could
// have left (paused, post-copy, a job, two copies, an unknown host) is not.
func TestRunsSettled(t *testing.T) {
	gone := DomainState{Host: "h2"}
	for _, c := range []struct {
		name   string
		states []DomainState
		want   string // "" for no verdict
	}{
		{"running after a move", []DomainState{gone, {Host: "h1", State: "running", Reason: "migrated", Job: "None"}}, "h1"},
		{"running since boot", []DomainState{{Host: "h1", State: "running", Reason: "booted", Job: "None"}, gone}, "h1"},
		{"paused", []DomainState{{Host: "h1", State: "paused", Reason: "migration", Job: "None"}, gone}, ""},
		{"post-copy", []DomainState{{Host: "h1", State: "running", Reason: "post-copy", Job: "None"}, gone}, ""},
		{"a job", []DomainState{{Host: "h1", State: "running", Reason: "migrated", Job: "Unbounded"}, gone}, ""},
		{"two copies", []DomainState{{Host: "h1", State: "running", Reason: "migrated", Job: "None"},
			{Host: "h2", State: "paused", Reason: "migration", Job: "None"}}, ""},
		{"shut off", []DomainState{{Host: "h1", State: "shut off", Reason: "destroyed"}, gone}, ""},
		{"unknown host", []DomainState{{Host: "h1", State: "running", Reason: "migrated", Job: "None"},
			{Host: "h2", Err: errTest}}, ""},
	} {
		host, ok := RunsSettled(c.states)
		if host != c.want || ok != (c.want != "") {
			t.Errorf("%s: RunsSettled = %q, %v; want %q (%v)", c.name, host, ok, c.want, c.states)
		}
	}
}

var errTest = testError("virsh: connection refused")

type testError string

func (e testError) Error() string { return string(e) }
