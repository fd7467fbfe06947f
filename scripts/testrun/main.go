// Command testrun runs go test as `make test` needs it: the output of a
// normal (non-verbose) go test run, and one loud rerun of each test that
// failed only because its lab guest's kernel panicked or hung under QEMU's
// software emulation (its failure carries lab.GuestCrashMark).
//
// Why a runner and not a retry inside each test: the TCG crash can follow any
// live migration of any lab test (about one move in a hundred in the basic
// tests, most moves after a suspend), so a retry in every test that moves a
// guest would repeat itself dozens of times, and a test that forgot it made
// CI red for a reason that is not hostmesh's. A rerun here is the same for
// all of them, it is printed as a WARNING with the crash line, and a test
// that fails again, or fails without the mark, fails the run.
//
// Usage: testrun [-rerun-timeout D] -- GO-TEST-ARGS... (packages last)
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hostmesh/hostmesh/testcluster/lab"
)

func main() {
	rerunTimeout := flag.Duration("rerun-timeout", 30*time.Minute, "go test -timeout of a rerun")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: testrun [-rerun-timeout D] -- GO-TEST-ARGS... (as for go test, packages last)")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	os.Exit(run(flag.Args(), *rerunTimeout, os.Stdout))
}

// run runs go test with args, reruns what crashed under TCG once, and
// returns the exit code: 0 when every test passed (in the end), 1 otherwise.
func run(args []string, rerunTimeout time.Duration, out io.Writer) int {
	first, err := goTest(args, out)
	if err != nil {
		fmt.Fprintf(out, "testrun: %v\n", err)
		return 1
	}
	if first.ok() {
		return 0
	}
	reruns := first.rerunnable(lab.GuestCrashMark)
	if len(reruns) == 0 || len(first.blocking(lab.GuestCrashMark)) > 0 {
		return 1 // a failure without the mark fails the run whatever a rerun would do
	}
	code := 0
	var notes []string
	for _, pkg := range sortedKeys(reruns) {
		tests := reruns[pkg]
		for _, tn := range tests {
			fmt.Fprintf(out, "\nWARNING: %s in %s failed because its guest's kernel panicked or hung after a move (%s); "+
				"QEMU 7.2 software emulation (lab.md), not hostmesh: running it once more\n", tn, pkg, first.crashLine(pkg, tn, lab.GuestCrashMark))
		}
		pattern := "^(" + strings.Join(quoteNames(tests), "|") + ")$"
		again, err := goTest([]string{"-count=1", "-timeout", rerunTimeout.String(), "-run", pattern, pkg}, out)
		switch {
		case err != nil:
			fmt.Fprintf(out, "testrun: rerun in %s: %v\n", pkg, err)
			code = 1
		case !again.ok():
			notes = append(notes, fmt.Sprintf("FAILED AGAIN: %s in %s", strings.Join(tests, ", "), pkg))
			code = 1
		default:
			notes = append(notes, fmt.Sprintf("passed on the rerun: %s in %s", strings.Join(tests, ", "), pkg))
		}
	}
	fmt.Fprintln(out, "\nWARNING: tests rerun after a TCG guest kernel panic or hang:")
	for _, n := range notes {
		fmt.Fprintln(out, "  "+n)
	}
	return code
}

// goTest runs go test -json args, printing what a non-verbose go test would.
func goTest(args []string, out io.Writer) (*report, error) {
	cmd := exec.Command("go", append([]string{"test", "-json"}, args...)...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("go test %s: %w", strings.Join(args, " "), err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("go test %s: %w", strings.Join(args, " "), err)
	}
	rep, perr := collect(stdout, out)
	werr := cmd.Wait()
	if perr != nil {
		return nil, fmt.Errorf("read go test %s: %w", strings.Join(args, " "), perr)
	}
	if werr != nil && rep.ok() {
		// go test failed but no package or test did: a build or setup error
		// whose text went to stderr; it must not pass.
		rep.broken = append(rep.broken, fmt.Sprintf("go test: %v", werr))
	}
	return rep, nil
}

// quoteNames escapes test names for a -run pattern.
func quoteNames(names []string) []string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = regexp.QuoteMeta(n)
	}
	return q
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
