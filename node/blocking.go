package node

import (
	"net/http"
	"net/url"
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
// index the answer will be read at. A bad index or wait, or any other
// query parameter, is an error.
func (n *Node) blockingRead(w http.ResponseWriter, r *http.Request) error {
	q, err := readQuery(r.URL.RawQuery, blockingParams...)
	if err != nil {
		return err
	}
	return n.blockingReadQuery(w, r, q)
}

// blockingReadQuery is blockingRead of a query the route already read
// (one that takes more parameters than index and wait).
func (n *Node) blockingReadQuery(w http.ResponseWriter, r *http.Request, q url.Values) error {
	b, err := parseBlocking(q)
	if err != nil {
		return err
	}
	if b.blocking {
		n.waitPast(r, b.index, b.wait)
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
