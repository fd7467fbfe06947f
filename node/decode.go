package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// Every body, path and query parameter an API handler reads goes through
// this file, so that one set of rules holds for every route (issue 9: an
// empty body on /v1/leave made its host leave, an empty PUT reset a
// cluster's limits): a body is JSON, at most maxRequestBytes, one object
// with only known fields and nothing after it, present where the route
// needs one; a parameter is checked with the same rules the replicated
// state applies to the command it becomes, and a refusal is a 4xx whose
// JSON error names the field or parameter.

const (
	// maxRequestBytes caps an operator's request body: a request becomes
	// at most one command, and a command's entry is at most this large.
	maxRequestBytes = fsm.MaxEntryBytes
	// maxListLimit bounds ?limit= of the migrations listing.
	maxListLimit = 100_000
	// maxLeaveTimeout bounds a leave's drain timeout.
	maxLeaveTimeout = 7 * 24 * time.Hour
	// defaultMaxBlockingReads caps the blocking reads one host serves at
	// once: each holds a connection and a goroutine for up to a minute.
	defaultMaxBlockingReads = 256
)

func tooLarge(what string, limit int) error {
	return &api.Error{Message: fmt.Sprintf("%s: request body over the limit of %d bytes", what, limit),
		Kind: api.KindBadRequest, Status: http.StatusRequestEntityTooLarge}
}

// readLimited reads a body up to limit bytes (the server's
// http.MaxBytesReader may stop it earlier).
func readLimited(body io.Reader, what string, limit int) ([]byte, error) {
	if body == nil {
		return nil, nil
	}
	data, err := io.ReadAll(io.LimitReader(body, int64(limit)+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge(what, int(mbe.Limit))
	case err != nil:
		return nil, badRequest("%s: read request body: %v", what, err)
	case len(data) > limit:
		return nil, tooLarge(what, limit)
	}
	return data, nil
}

// decodeJSON decodes body, sent with Content-Type ct, into v: the one way
// a request body is read. what names the request in errors ("drain").
func decodeJSON(ct string, body io.Reader, what string, v any) error {
	data, err := readLimited(body, what, maxRequestBytes)
	if err != nil {
		return err
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return badRequest("%s: the request body is empty: a JSON object is required", what)
	}
	if err := checkContentType(ct, what); err != nil {
		return err
	}
	if data[0] != '{' {
		return badRequest("%s: the request body must be a JSON object, not %s", what, jsonKind(data))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("%s: %s", what, jsonError(err))
	}
	if off := dec.InputOffset(); off < int64(len(data)) {
		return badRequest("%s: trailing data after the JSON object at byte %d", what, off)
	}
	return nil
}

// decodeBody reads r's body with decodeJSON.
func decodeBody(r *http.Request, what string, v any) error {
	return decodeJSON(r.Header.Get("Content-Type"), r.Body, what, v)
}

// decodeNoBody checks that a route that takes no body got none: an empty
// body or {} (what a generic client sends) passes, anything else is
// refused rather than ignored.
func decodeNoBody(r *http.Request, what string) error {
	data, err := readLimited(r.Body, what, 1<<10)
	if err != nil {
		return err
	}
	if d := bytes.TrimSpace(data); len(d) > 0 && !bytes.Equal(d, []byte("{}")) {
		return badRequest("%s: this request takes no body", what)
	}
	return nil
}

// checkContentType refuses a body that does not say it is JSON: a browser
// form (or curl -d without -H) cannot post to the API by accident, and a
// cross-site form cannot send application/json without a preflight.
func checkContentType(ct, what string) error {
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" {
		return &api.Error{Message: fmt.Sprintf("%s: Content-Type %q: the request body must be sent as application/json", what, ct),
			Kind: api.KindBadRequest, Status: http.StatusUnsupportedMediaType}
	}
	return nil
}

// jsonKind names what a non-object JSON body is.
func jsonKind(data []byte) string {
	switch data[0] {
	case 'n':
		return "null"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return "a number"
	}
	return "something else"
}

// jsonError turns encoding/json's error into one naming the field.
func jsonError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "(body)"
		}
		return fmt.Sprintf("field %q: %s is not a valid %s", field, te.Value, te.Type)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON object is cut short"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// checkField turns a field rule's failure into a 400.
func checkField(what string, err error) error {
	if err != nil {
		return badRequest("%s: %v", what, err)
	}
	return nil
}

// The requests of the write routes. Each decoder returns a request that
// builds a command fsm.Validate accepts (FuzzAPIBodies checks it).

func decodeMigrate(ct string, body io.Reader) (api.MigrateRequest, error) {
	var req api.MigrateRequest
	if err := decodeJSON(ct, body, "migrate", &req); err != nil {
		return req, err
	}
	if req.VM == "" {
		return req, badRequest("migrate: field \"vm\" is required: a VM name or UUID")
	}
	if err := checkField("migrate", fsm.CheckName(`field "vm"`, req.VM)); err != nil {
		return req, err
	}
	if req.To != "" {
		if err := checkField("migrate", fsm.CheckHostName(`field "to"`, req.To)); err != nil {
			return req, err
		}
	}
	if _, err := migrate.PolicyByName(req.Policy); err != nil {
		return req, badRequest("migrate: field \"policy\": %v", err)
	}
	if req.BandwidthMiB > fsm.MaxBandwidthMiB {
		return req, badRequest("migrate: field \"bandwidth_mib\" %d: over the limit of %d", req.BandwidthMiB, fsm.MaxBandwidthMiB)
	}
	if req.Parallel < 0 || req.Parallel > fsm.MaxParallel {
		return req, badRequest("migrate: field \"parallel\" %d: must be 0 (the cluster's default) to %d", req.Parallel, fsm.MaxParallel)
	}
	return req, nil
}

func decodeDrain(ct string, body io.Reader) (api.DrainRequest, error) {
	var req api.DrainRequest
	if err := decodeJSON(ct, body, "drain", &req); err != nil {
		return req, err
	}
	if _, err := migrate.PolicyByName(req.Policy); err != nil {
		return req, badRequest("drain: field \"policy\": %v", err)
	}
	return req, checkField("drain", fsm.CheckToken(`field "reason"`, req.Reason))
}

func decodeActivate(ct string, body io.Reader) (api.ActivateRequest, error) {
	var req api.ActivateRequest
	return req, decodeJSON(ct, body, "activate", &req)
}

func decodeLeave(ct string, body io.Reader) (api.LeaveRequest, error) {
	var req api.LeaveRequest
	if err := decodeJSON(ct, body, "leave", &req); err != nil {
		return req, err
	}
	if max := int(maxLeaveTimeout / time.Second); req.TimeoutSeconds < 0 || req.TimeoutSeconds > max {
		return req, badRequest("leave: field \"timeout_seconds\" %d: must be 0 (the host's drain timeout) to %d", req.TimeoutSeconds, max)
	}
	return req, nil
}

// decodeCluster reads a PUT of a cluster's settings onto cur, its current
// settings: the fields the body names change, the others keep their values
// (an empty PUT reset every limit to its default before). A body naming
// another cluster than the path is refused.
func decodeCluster(ct string, body io.Reader, cur fsm.Cluster) (fsm.Cluster, error) {
	c := cur
	// json reuses a slice's backing array: never decode into the state's.
	c.RequiredNetworks, c.CPUBaseline = slices.Clone(c.RequiredNetworks), slices.Clone(c.CPUBaseline)
	what := fmt.Sprintf("cluster %q", cur.Name)
	if err := decodeJSON(ct, body, what, &c); err != nil {
		return cur, err
	}
	if c.Name != cur.Name {
		return cur, badRequest("%s: field \"name\" %q: the path names cluster %q", what, c.Name, cur.Name)
	}
	if _, err := migrate.PolicyByName(c.Policy); err != nil {
		return cur, badRequest("%s: field \"policy\": %v", what, err)
	}
	data, err := fsm.Encode(fsm.CmdSetCluster, fsm.SetCluster{Cluster: c, Actor: "api", At: time.Unix(1, 0)})
	if err == nil {
		err = fsm.Validate(data)
	}
	if err != nil {
		return cur, badRequest("%s: %v", what, err)
	}
	return c, nil
}

// Path parameters, checked before they reach a command or a lookup.

func hostParam(r *http.Request) (string, error) {
	name := r.PathValue("name")
	return name, checkField("path", fsm.CheckHostName("host name", name))
}

func clusterParam(r *http.Request) (string, error) {
	name := r.PathValue("name")
	return name, checkField("path", fsm.CheckHostName("cluster name", name))
}

func migrationParam(r *http.Request) (string, error) {
	id := r.PathValue("id")
	return id, checkField("path", fsm.CheckMigrationID("migration ID", id))
}

// Query parameters.

// readQuery parses r's query and refuses a parameter the route does not
// take, or one given twice: a typo (?limt=5) would otherwise be ignored.
func readQuery(rawQuery string, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, badRequest("query: %v", err)
	}
	for k, vs := range q {
		if !slices.Contains(allowed, k) {
			if len(allowed) == 0 {
				return nil, badRequest("query parameter %q: this route takes none", k)
			}
			return nil, badRequest("query parameter %q: unknown here (this route takes %s)", k, strings.Join(allowed, ", "))
		}
		if len(vs) > 1 {
			return nil, badRequest("query parameter %q: given %d times", k, len(vs))
		}
	}
	return q, nil
}

// blockingQuery is a read's ?index=&wait=.
type blockingQuery struct {
	index    uint64
	wait     time.Duration
	blocking bool
}

// blockingParams are the query parameters of a blocking read.
var blockingParams = []string{"index", "wait"}

func parseBlocking(q url.Values) (blockingQuery, error) {
	var b blockingQuery
	s, ok := q["index"]
	if !ok {
		if _, ok := q["wait"]; ok {
			return b, badRequest("query parameter \"wait\": only with index (a blocking read waits past an index)")
		}
		return b, nil
	}
	index, err := strconv.ParseUint(s[0], 10, 64)
	if err != nil {
		return b, badRequest("query parameter \"index\" %q: not a Raft index", s[0])
	}
	b.index, b.blocking = index, true
	b.wait = defaultBlockingWait
	if q.Has("wait") {
		if b.wait, err = parseWait(q.Get("wait")); err != nil {
			return b, err
		}
	}
	return b, nil
}

// parseWait reads ?wait=: a positive duration; above maxBlockingWait it is
// served as maxBlockingWait, as Consul clamps its wait.
func parseWait(s string) (time.Duration, error) {
	wait, err := time.ParseDuration(s)
	if err != nil || wait <= 0 {
		return 0, badRequest("query parameter \"wait\" %q: not a positive duration like 5s", s)
	}
	return min(wait, maxBlockingWait), nil
}

// parseMigrationsQuery reads ?state=A,B&limit=N of the migrations listing.
func parseMigrationsQuery(q url.Values) (map[fsm.MigrationState]bool, int, error) {
	states := map[fsm.MigrationState]bool{}
	if q.Has("state") {
		for _, st := range strings.Split(q.Get("state"), ",") {
			switch ms := fsm.MigrationState(st); ms {
			case fsm.MigQueued, fsm.MigRunning, fsm.MigSucceeded, fsm.MigFailed, fsm.MigCancelled:
				states[ms] = true
			default:
				return nil, 0, badRequest("query parameter \"state\" %q: not one of Queued, Running, Succeeded, Failed, Cancelled", st)
			}
		}
	}
	limit := 0
	if q.Has("limit") {
		v := q.Get("limit")
		k, err := strconv.Atoi(v)
		if err != nil || k < 1 || k > maxListLimit {
			return nil, 0, badRequest("query parameter \"limit\" %q: must be 1 to %d", v, maxListLimit)
		}
		limit = k
	}
	return states, limit, nil
}

// parseEventsQuery reads ?after=&host=&vm=&limit=&wait= of the event log.
func parseEventsQuery(q url.Values) (fsm.EventQuery, time.Duration, error) {
	var eq fsm.EventQuery
	var err error
	if q.Has("after") {
		s := q.Get("after")
		if eq.After, err = strconv.ParseUint(s, 10, 64); err != nil {
			return eq, 0, badRequest("query parameter \"after\" %q: not an event sequence number", s)
		}
	}
	eq.Limit = defaultEventLimit
	if q.Has("limit") {
		s := q.Get("limit")
		if eq.Limit, err = strconv.Atoi(s); err != nil || eq.Limit < 1 || eq.Limit > fsm.MaxEvents {
			return eq, 0, badRequest("query parameter \"limit\" %q: must be 1 to %d", s, fsm.MaxEvents)
		}
	}
	if q.Has("last") {
		if q.Has("after") || q.Has("limit") || q.Has("wait") {
			return eq, 0, badRequest("query parameter \"last\" reads the newest events once: it goes with neither \"after\", \"limit\" nor \"wait\"")
		}
		s := q.Get("last")
		if eq.Last, err = strconv.Atoi(s); err != nil || eq.Last < 1 || eq.Last > fsm.MaxEvents {
			return eq, 0, badRequest("query parameter \"last\" %q: must be 1 to %d", s, fsm.MaxEvents)
		}
		eq.Limit = 0
	}
	if q.Has("host") {
		eq.Host = q.Get("host")
		if err := fsm.CheckHostName(`query parameter "host"`, eq.Host); err != nil {
			return eq, 0, badRequest("%v", err)
		}
	}
	if q.Has("vm") {
		eq.VM = q.Get("vm")
		if err := fsm.CheckName(`query parameter "vm"`, eq.VM); err != nil {
			return eq, 0, badRequest("%v", err)
		}
	}
	var wait time.Duration
	if q.Has("wait") {
		if wait, err = parseWait(q.Get("wait")); err != nil {
			return eq, 0, err
		}
	}
	return eq, wait, nil
}

// limitBlocking caps the blocking reads this host serves at once (a
// listing with ?index=, the event log with ?wait=): past max, a read is
// answered at once with 429 and Retry-After rather than hold one more
// connection and goroutine for up to a minute. Other requests pass.
func limitBlocking(h http.Handler, max int) http.Handler {
	if max <= 0 {
		max = defaultMaxBlockingReads
	}
	slots := make(chan struct{}, max)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isBlockingRead(r) {
			h.ServeHTTP(w, r)
			return
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			h.ServeHTTP(w, r)
		default:
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusTooManyRequests, api.Error{Kind: api.KindBusy,
				Message: fmt.Sprintf("%d blocking reads already wait on this host, its limit: retry after 1 s", max)})
		}
	})
}

// isBlockingRead tells a request that may wait for a change.
func isBlockingRead(r *http.Request) bool {
	if r.Method != http.MethodGet || r.URL.RawQuery == "" {
		return false
	}
	q := r.URL.Query()
	if r.URL.Path == "/v1/events" {
		return q.Has("wait")
	}
	return q.Has("index")
}
