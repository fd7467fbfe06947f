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

func TestCrashOnce(t *testing.T) {
	st := os.Getenv("TESTRUN_STATE")
	if st == "" {
		t.Skip("run by testrun's tests only")
	}
	if _, err := os.Stat(st); err != nil {
		if err := os.WriteFile(st, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Fatalf("%s: guest counter did not reach 10: its kernel panicked", mark)
	}
}

func TestCrashAlways(t *testing.T) {
	if os.Getenv("TESTRUN_STATE") == "" {
		t.Skip("run by testrun's tests only")
	}
	t.Fatalf("%s: again", mark)
}

func TestPlainFailure(t *testing.T) {
	if os.Getenv("TESTRUN_STATE") == "" {
		t.Skip("run by testrun's tests only")
	}
	t.Run("sub", func(t *testing.T) { t.Error("a real failure") })
}

func TestPasses(t *testing.T) { t.Log("fine") }
