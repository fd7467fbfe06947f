package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	bi := func(v string, settings ...debug.BuildSetting) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			return &debug.BuildInfo{Main: debug.Module{Version: v}, Settings: settings}, true
		}
	}
	rev := debug.BuildSetting{Key: "vcs.revision", Value: "0123456789abcdef0123"}
	dirty := debug.BuildSetting{Key: "vcs.modified", Value: "true"}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	for _, c := range []struct {
		what        string
		v, c        string
		read        func() (*debug.BuildInfo, bool)
		want, wantC string
		modified    bool
	}{
		{"ldflags win over build info", "1.2.3", "feedface", bi("v9.9.9", rev, dirty), "1.2.3", "feedface", false},
		{"build info: module version and revision", "", "", bi("v1.4.0", rev, dirty), "v1.4.0", rev.Value, true},
		{"a devel build from a checkout", "", "", bi("(devel)", rev), fallback, rev.Value, false},
		{"nothing known", "", "", none, fallback, "unknown", false},
	} {
		got := resolve(c.v, c.c, c.read)
		if got.Version != c.want || got.Commit != c.wantC || got.Modified != c.modified {
			t.Errorf("%s: %+v, want version %q commit %q modified %v", c.what, got, c.want, c.wantC, c.modified)
		}
	}
	s := resolve("1.2.3", "0123456789abcdef", none).String()
	if !strings.HasPrefix(s, "1.2.3 (commit 0123456789ab, go") {
		t.Errorf("String() = %q", s)
	}
}
