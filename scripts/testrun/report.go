package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// event is one line of go test -json (cmd/test2json's TestEvent).
type event struct {
	Action     string
	Package    string
	ImportPath string // build-output and build-fail events
	Test       string
	Output     string
}

// report is what one go test run said about its packages and tests.
type report struct {
	failed    map[string][]string // package → failed top-level tests, in order
	output    map[string]string   // package+"\x00"+test → the test's output (failed tests only)
	pkgFailed map[string]bool
	broken    []string // failures that no test carries: build errors, go test itself
}

func (r *report) ok() bool { return len(r.pkgFailed) == 0 && len(r.broken) == 0 }

// rerunnable returns, for each failed package whose every failed test
// carries mark, those tests; a package that failed with no failed test
// (a panic in TestMain, a build error) is never among them.
func (r *report) rerunnable(mark string) map[string][]string {
	out := map[string][]string{}
	for pkg := range r.pkgFailed {
		tests := r.failed[pkg]
		if len(tests) == 0 {
			continue
		}
		all := true
		for _, tn := range tests {
			all = all && strings.Contains(r.output[pkg+"\x00"+tn], mark)
		}
		if all {
			out[pkg] = tests
		}
	}
	return out
}

// blocking lists the failures that a rerun cannot clear.
func (r *report) blocking(mark string) []string {
	ok := r.rerunnable(mark)
	out := append([]string(nil), r.broken...)
	for pkg := range r.pkgFailed {
		if _, fine := ok[pkg]; !fine {
			out = append(out, pkg)
		}
	}
	return out
}

// crashLine returns the line of test's output that carries mark, from it on.
func (r *report) crashLine(pkg, test, mark string) string {
	for _, l := range strings.Split(r.output[pkg+"\x00"+test], "\n") {
		if i := strings.Index(l, mark); i >= 0 {
			return strings.TrimSpace(l[i:])
		}
	}
	return "no crash line"
}

// collect reads go test -json from in and writes to out what go test
// without -json and -v would have printed: package lines, the output of
// failed and skipped tests, build errors. It returns what failed.
func collect(in io.Reader, out io.Writer) (*report, error) {
	r := &report{failed: map[string][]string{}, output: map[string]string{}, pkgFailed: map[string]bool{}}
	buf := map[string]*strings.Builder{} // package+"\x00"+top-level test → output so far
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(out, "%s\n", line) // not an event: go itself talking
			continue
		}
		top, _, _ := strings.Cut(e.Test, "/")
		key := e.Package + "\x00" + top
		switch {
		case e.Action == "build-output":
			fmt.Fprint(out, e.Output)
		case e.Action == "build-fail":
			r.broken = append(r.broken, "build of "+e.ImportPath)
		case e.Test == "" && e.Action == "output":
			if e.Output != "PASS\n" { // go test without -v prints it for no package of several
				fmt.Fprint(out, e.Output)
			}
		case e.Test == "" && e.Action == "fail":
			r.pkgFailed[e.Package] = true
			for k, b := range buf { // tests a panic or timeout cut short
				if pkg, tn, _ := strings.Cut(k, "\x00"); pkg == e.Package {
					fmt.Fprint(out, b.String())
					r.failed[pkg] = append(r.failed[pkg], tn)
					r.output[k] = b.String()
					delete(buf, k)
				}
			}
		case e.Test == "":
		case e.Action == "output":
			if !isRunLine(e.Output) {
				b := buf[key]
				if b == nil {
					b = &strings.Builder{}
					buf[key] = b
				}
				b.WriteString(e.Output)
			}
		case e.Test != top: // a subtest ended: its parent reports
		case e.Action == "fail":
			s := text(buf[key])
			fmt.Fprint(out, s)
			r.failed[e.Package] = append(r.failed[e.Package], top)
			r.output[key] = s
			delete(buf, key)
		case e.Action == "skip":
			fmt.Fprint(out, text(buf[key]))
			delete(buf, key)
		case e.Action == "pass":
			delete(buf, key)
		}
	}
	return r, sc.Err()
}

// isRunLine tells the lines go test -v adds and go test without -v does not.
func isRunLine(s string) bool {
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// text is b's content; a test that printed nothing has no builder.
func text(b *strings.Builder) string {
	if b == nil {
		return ""
	}
	return b.String()
}
