package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Event is one change of the mesh's state, from the replicated event log
// (package fsm's Event).
type Event struct {
	Seq       uint64    `json:"seq"`
	Index     uint64    `json:"index"`
	Time      time.Time `json:"time"`
	Actor     string    `json:"actor,omitempty"`
	Kind      string    `json:"kind"`
	Hosts     []string  `json:"hosts,omitempty"`
	VM        string    `json:"vm,omitempty"`
	VMUUID    string    `json:"vm_uuid,omitempty"`
	Migration string    `json:"migration,omitempty"`
	Drain     string    `json:"drain,omitempty"`
	Message   string    `json:"message"`
}

// Events answers GET /v1/events: the events read, oldest first; Next is
// the After of the next read; Oldest the oldest event the bounded log
// still holds (a reader with After below Oldest-1 missed some).
type Events struct {
	Events []Event `json:"events"`
	Next   uint64  `json:"next"`
	Oldest uint64  `json:"oldest"`
}

// EventQuery selects events: after Seq After, about Host or VM (name or
// UUID), at most Limit (default 100). With Wait the read blocks until an
// event matches or Wait (at most 60 s) passes.
type EventQuery struct {
	After uint64
	Host  string
	VM    string
	Limit int
	Wait  time.Duration
}

// Events reads the event log.
func (c *Client) Events(ctx context.Context, q EventQuery) (Events, error) {
	v := url.Values{}
	if q.After > 0 {
		v.Set("after", fmt.Sprint(q.After))
	}
	if q.Host != "" {
		v.Set("host", q.Host)
	}
	if q.VM != "" {
		v.Set("vm", q.VM)
	}
	if q.Limit > 0 {
		v.Set("limit", fmt.Sprint(q.Limit))
	}
	if q.Wait > 0 {
		v.Set("wait", q.Wait.String())
	}
	path := "/v1/events"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out Events
	_, err := c.do(ctx, http.MethodGet, path, nil, &out, q.Wait)
	return out, err
}
