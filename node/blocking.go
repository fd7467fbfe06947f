package node

import (
	"net/http"
	"strconv"
	"time"
)

// Blocking reads, as Consul's: a GET with ?index=N waits until this
// replica has applied an entry past N (or ?wait=, default 5 s, at most
// 60 s, passes), then answers with the index it read in X-Raft-Index.
// meshctl's --wait follows a migration or a drain this way, learning of its
// end at once instead of on the next poll.
const (
	defaultBlockingWait = 5 * time.Second
	maxBlockingWait     = 60 * time.Second
)

// blockingRead waits as the request asks and sets X-Raft-Index to the
// index the answer will be read at. A bad index or wait is an error.
func (n *Node) blockingRead(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if s := q.Get("index"); s != "" {
		index, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return badRequest("index %q: not a Raft index", s)
		}
		wait := defaultBlockingWait
		if s := q.Get("wait"); s != "" {
			if wait, err = time.ParseDuration(s); err != nil || wait <= 0 {
				return badRequest("wait %q: not a positive duration like 5s", s)
			}
		}
		n.waitPast(r, index, min(wait, maxBlockingWait))
	}
	w.Header().Set(indexHeader, strconv.FormatUint(n.fsm.Index(), 10))
	return nil
}

// waitPast returns once this replica applied an entry after index, the wait
// passed, or the client went away.
func (n *Node) waitPast(r *http.Request, index uint64, wait time.Duration) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		changed := n.fsm.Changed()
		if n.fsm.Index() > index {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			return
		case <-r.Context().Done():
			return
		}
	}
}
