package node

import (
	"net/http"
	"strconv"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
)

// eventsResponse is what GET /v1/events writes: api.Events' JSON.
type eventsResponse struct {
	Events []fsm.Event `json:"events"`
	// Next is the after= of the next read: every event up to it was
	// looked at.
	Next uint64 `json:"next"`
	// Oldest is the Seq of the oldest event the log still holds; a reader
	// whose after= is below Oldest-1 missed events the ring dropped.
	Oldest uint64 `json:"oldest"`
}

// defaultEventLimit is how many events one read returns unless it asks.
const defaultEventLimit = 100

// handleEvents serves the replicated event log: GET /v1/events?after=SEQ
// &host=H&vm=NAME-OR-UUID&limit=N&wait=30s. With wait it is a blocking
// read of the stream: it answers as soon as an event after SEQ matches, or
// empty when the wait passed, so `meshctl events --follow` learns of each
// event at once. ?last=N (with host and vm only) answers the newest N
// matching events, for a reader that starts from now.
func (n *Node) handleEvents(w http.ResponseWriter, r *http.Request) {
	v, err := readQuery(r.URL.RawQuery, "after", "host", "vm", "limit", "wait", "last")
	if err != nil {
		writeErr(w, err)
		return
	}
	q, wait, err := parseEventsQuery(v)
	if err != nil {
		writeErr(w, err)
		return
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		changed := n.fsm.Changed()
		evs, last := n.fsm.Events(q)
		if len(evs) > 0 || wait == 0 {
			n.writeEvents(w, q, evs, last)
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			n.writeEvents(w, q, evs, last)
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (n *Node) writeEvents(w http.ResponseWriter, q fsm.EventQuery, evs []fsm.Event, last uint64) {
	resp := eventsResponse{Events: evs, Next: max(last, q.After)}
	if q.Limit > 0 && len(evs) == q.Limit {
		resp.Next = evs[len(evs)-1].Seq
	}
	if resp.Events == nil {
		resp.Events = []fsm.Event{}
	}
	if all, _ := n.fsm.Events(fsm.EventQuery{Limit: 1}); len(all) > 0 {
		resp.Oldest = all[0].Seq
	}
	w.Header().Set(indexHeader, strconv.FormatUint(n.fsm.Index(), 10))
	writeJSON(w, http.StatusOK, resp)
}
