// Package flaky holds tests that testrun's own tests run through go test:
// one whose guest "crashes" on the first run only, one that crashes every
// time, and one that fails without the crash mark. TESTRUN_STATE names a
// file that tells a first run from a rerun.
package flaky

import (
	"os"
	"testing"
)

const mark = "TCG GUEST CRASH" // lab.GuestCrashMark

// state is the file that tells a first run from a rerun; testrun's tests
// set it (go test ./... never runs a testdata package).
func state(t *testing.T) string {
	st := os.Getenv("TESTRUN_STATE")
	if st == "" {
		t.Fatal("TESTRUN_STATE is not set: these tests are run by testrun's own tests")
	}
	return st
}

func TestCrashOnce(t *testing.T) {
	st := state(t)
	if _, err := os.Stat(st); err != nil {
		if err := os.WriteFile(st, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Fatalf("%s: guest counter did not reach 10: its kernel panicked", mark)
	}
}

func TestCrashAlways(t *testing.T) {
	state(t)
	t.Fatalf("%s: again", mark)
}

func TestPlainFailure(t *testing.T) {
	state(t)
	t.Run("sub", func(t *testing.T) { t.Error("a real failure") })
}

func TestPasses(t *testing.T) { t.Log("fine") }
