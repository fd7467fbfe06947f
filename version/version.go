// Package version says which build of hostmesh this is. The Makefile sets
// Version and Commit with -ldflags -X; a binary built otherwise (go build,
// go install) falls back to what the Go toolchain stamped into it: the
// module's version and the VCS revision (runtime/debug.ReadBuildInfo).
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
)

// Set at link time: -X github.com/hostmesh/hostmesh/version.Version=0.1.0
// -X github.com/hostmesh/hostmesh/version.Commit=<git sha>.
var (
	Version string
	Commit  string
)

// fallback is what a build without -ldflags knows of itself.
const fallback = "0.0.0-dev"

var (
	once sync.Once
	info Info
)

// Info is one build's identity.
type Info struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	// Modified: the work tree had uncommitted changes (VCS info only).
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
}

// Get returns this build's identity: the link-time values first, then the
// build info's, then "0.0.0-dev" and "unknown".
func Get() Info {
	once.Do(func() { info = resolve(Version, Commit, debug.ReadBuildInfo) })
	return info
}

func resolve(v, c string, read func() (*debug.BuildInfo, bool)) Info {
	out := Info{Version: v, Commit: c, Go: runtime.Version()}
	if bi, ok := read(); ok {
		if out.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			out.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if out.Commit == "" {
					out.Commit = s.Value
				}
			case "vcs.modified":
				if c == "" {
					out.Modified = s.Value == "true"
				}
			}
		}
	}
	if out.Version == "" {
		out.Version = fallback
	}
	if out.Commit == "" {
		out.Commit = "unknown"
	}
	return out
}

// String is what --version prints after the program's name:
// "0.1.0 (commit 3e4f593c1a2b, go1.26.8)".
func (i Info) String() string {
	c := i.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	if i.Modified {
		c += "+dirty"
	}
	return fmt.Sprintf("%s (commit %s, %s)", i.Version, c, i.Go)
}
