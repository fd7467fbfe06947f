package node

import (
	"net/http"
	"runtime/pprof"
	"strconv"
)

// handleDebugProfile serves one of the Go runtime's profiles (heap,
// goroutine, allocs, ...) of this meshd, for an operator with admin rights:
// `GET /v1/debug/pprof/heap` is read with `go tool pprof`, `?debug=1` or
// `?debug=2` gives the text form. Where a meshd's memory or goroutines go
// at 100 hosts is otherwise only guessed from /proc (issue 15 met exactly
// that); consul serves the same behind its operator ACL. Only snapshot
// profiles are served: a CPU profile would hold a handler for seconds.
func (n *Node) handleDebugProfile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("profile")
	p := pprof.Lookup(name)
	if p == nil {
		writeErr(w, badRequest("profile %q: no such profile (heap, goroutine, allocs, threadcreate, block, mutex)", name))
		return
	}
	debug := 0
	if s := r.URL.Query().Get("debug"); s != "" {
		d, err := strconv.Atoi(s)
		if err != nil || d < 0 || d > 2 {
			writeErr(w, badRequest("profile %s: debug=%q: want 0, 1 or 2", name, s))
			return
		}
		debug = d
	}
	if debug == 0 {
		w.Header().Set("Content-Type", "application/octet-stream")
	} else {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	if err := p.WriteTo(w, debug); err != nil {
		n.log.Warn("debug profile", "profile", name, "err", err)
	}
}
