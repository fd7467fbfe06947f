package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runFlaky runs testrun over testdata/flaky with -run pattern and returns
// its exit code and output.
func runFlaky(t *testing.T, pattern string) (int, string) {
	t.Helper()
	t.Setenv("TESTRUN_STATE", filepath.Join(t.TempDir(), "state"))
	var out bytes.Buffer
	code := run([]string{"-count=1", "-run", pattern, "./testdata/flaky"}, time.Minute, &out)
	return code, out.String()
}

func TestRerunClearsACrashOnce(t *testing.T) {
	code, out := runFlaky(t, "^(TestCrashOnce|TestPasses)$")
	if code != 0 {
		t.Fatalf("exit %d, want 0 after the rerun passed:\n%s", code, out)
	}
	for _, want := range []string{"--- FAIL: TestCrashOnce", "WARNING: TestCrashOnce", "passed on the rerun: TestCrashOnce"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "=== RUN") || strings.Contains(out, "fine") {
		t.Errorf("output shows what a non-verbose go test hides:\n%s", out)
	}
}

func TestSecondCrashFails(t *testing.T) {
	code, out := runFlaky(t, "^TestCrashAlways$")
	if code != 1 || !strings.Contains(out, "FAILED AGAIN: TestCrashAlways") {
		t.Fatalf("exit %d, want 1 and FAILED AGAIN:\n%s", code, out)
	}
}

func TestFailureWithoutMarkIsNotRerun(t *testing.T) {
	code, out := runFlaky(t, "^(TestCrashOnce|TestPlainFailure)$")
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	if strings.Contains(out, "WARNING") {
		t.Errorf("a package with an unmarked failure was rerun:\n%s", out)
	}
	if !strings.Contains(out, "a real failure") {
		t.Errorf("the subtest's failure is not shown:\n%s", out)
	}
}

func TestBuildFailureFails(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"-count=1", "./testdata/nosuchpackage"}, time.Minute, &out); code != 1 {
		t.Fatalf("exit %d for a package that does not exist, want 1:\n%s", code, out.String())
	}
}

func TestCollectKeepsPackageLines(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"start","Package":"p"}`,
		`{"Action":"run","Package":"p","Test":"TestA"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:9: TCG GUEST CRASH: x\n"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"--- FAIL: TestA (1.00s)\n"}`,
		`{"Action":"fail","Package":"p","Test":"TestA"}`,
		`{"Action":"output","Package":"p","Output":"FAIL\n"}`,
		`{"Action":"output","Package":"p","Output":"FAIL\tp\t1.0s\n"}`,
		`{"Action":"fail","Package":"p"}`,
		`not json`,
	}, "\n")
	var out bytes.Buffer
	r, err := collect(strings.NewReader(in), &out)
	if err != nil {
		t.Fatal(err)
	}
	want := "    a_test.go:9: TCG GUEST CRASH: x\n--- FAIL: TestA (1.00s)\nFAIL\nFAIL\tp\t1.0s\nnot json\n"
	if out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}
	if got := r.rerunnable("TCG GUEST CRASH"); len(got["p"]) != 1 || got["p"][0] != "TestA" {
		t.Errorf("rerunnable = %v, want p: [TestA]", got)
	}
	if r.crashLine("p", "TestA", "TCG GUEST CRASH") != "TCG GUEST CRASH: x" {
		t.Errorf("crash line %q", r.crashLine("p", "TestA", "TCG GUEST CRASH"))
	}
}
