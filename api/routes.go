package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Status is the Raft view of the meshd asked.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.Do(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// Hosts lists the hosts with their facts, state and Raft role.
func (c *Client) Hosts(ctx context.Context) ([]HostView, error) {
	var hs []HostView
	err := c.Do(ctx, http.MethodGet, "/v1/hosts", nil, &hs)
	return hs, err
}

// VMs lists the VMs and the host that runs each.
func (c *Client) VMs(ctx context.Context) ([]VM, error) {
	var vms []VM
	err := c.Do(ctx, http.MethodGet, "/v1/vms", nil, &vms)
	return vms, err
}

// Migrations lists the queue and the history, by ID.
func (c *Client) Migrations(ctx context.Context) ([]Migration, error) {
	var ms []Migration
	err := c.Do(ctx, http.MethodGet, "/v1/migrations", nil, &ms)
	return ms, err
}

// Migration reads one migration; with q it is a blocking read.
func (c *Client) Migration(ctx context.Context, id string, q *QueryOptions) (Migration, QueryMeta, error) {
	var m Migration
	meta, err := c.query(ctx, "/v1/migrations/"+url.PathEscape(id), q, &m)
	return m, meta, err
}

// Migrate queues a migration (or, with DryRun, runs every host's checks).
// A refusal is an *Error of kind KindRefused naming the failed checks.
func (c *Client) Migrate(ctx context.Context, req MigrateRequest) (MigrateResponse, error) {
	var resp MigrateResponse
	err := c.Do(ctx, http.MethodPost, "/v1/migrations", req, &resp)
	return resp, err
}

// CancelMigration cancels a queued migration or aborts a running one.
func (c *Client) CancelMigration(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodPost, "/v1/migrations/"+url.PathEscape(id)+"/cancel", nil, nil)
}

// Drain puts a host in maintenance: every VM is queued to move away.
func (c *Client) Drain(ctx context.Context, host string, req DrainRequest) (HostMigrations, error) {
	var resp HostMigrations
	err := c.Do(ctx, http.MethodPost, "/v1/hosts/"+url.PathEscape(host)+"/drain", req, &resp)
	return resp, err
}

// DrainStatus reads a host's last drain; with q it is a blocking read.
func (c *Client) DrainStatus(ctx context.Context, host string, q *QueryOptions) (Drain, QueryMeta, error) {
	var d Drain
	meta, err := c.query(ctx, "/v1/hosts/"+url.PathEscape(host)+"/drain", q, &d)
	return d, meta, err
}

// CancelDrain stops a drain and returns the host to Up.
func (c *Client) CancelDrain(ctx context.Context, host string) error {
	return c.Do(ctx, http.MethodPost, "/v1/hosts/"+url.PathEscape(host)+"/drain/cancel", nil, nil)
}

// Activate brings a host out of maintenance (Return: its VMs come back).
func (c *Client) Activate(ctx context.Context, host string, req ActivateRequest) (HostMigrations, error) {
	var resp HostMigrations
	err := c.Do(ctx, http.MethodPost, "/v1/hosts/"+url.PathEscape(host)+"/activate", req, &resp)
	return resp, err
}

// Cluster reads a cluster's settings.
func (c *Client) Cluster(ctx context.Context, name string) (Cluster, error) {
	var cl Cluster
	err := c.Do(ctx, http.MethodGet, "/v1/clusters/"+url.PathEscape(name), nil, &cl)
	return cl, err
}

// SetCluster writes a cluster's settings and returns what was stored.
func (c *Client) SetCluster(ctx context.Context, cl Cluster) (Cluster, error) {
	var out Cluster
	err := c.Do(ctx, http.MethodPut, "/v1/clusters/"+url.PathEscape(cl.Name), cl, &out)
	return out, err
}

// RecomputeCPUBaseline recomputes a cluster's CPU baseline from its live
// hosts (it may lower it: the event names the features dropped) and
// returns the cluster.
func (c *Client) RecomputeCPUBaseline(ctx context.Context, name string) (Cluster, error) {
	var out Cluster
	err := c.Do(ctx, http.MethodPost, "/v1/clusters/"+url.PathEscape(name)+"/cpu-baseline", nil, &out)
	return out, err
}

// defaultLeaveWait covers meshd's default drain timeout (10 minutes) when
// a leave does not set its own.
const defaultLeaveWait = 10 * time.Minute

// Leave drains the meshd asked and takes it out of the mesh; the request
// waits for the drain, so its timeout grows by the drain's.
func (c *Client) Leave(ctx context.Context, req LeaveRequest) (LeaveReport, error) {
	var rep LeaveReport
	wait := time.Duration(req.TimeoutSeconds) * time.Second
	if wait <= 0 {
		wait = defaultLeaveWait
	}
	_, err := c.do(ctx, http.MethodPost, "/v1/leave", req, &rep, wait+time.Minute)
	return rep, err
}

// Metrics is the Prometheus exposition text of the meshd asked.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	var b strings.Builder
	err := c.Do(ctx, http.MethodGet, "/metrics", nil, &b)
	return b.String(), err
}

// InternalApply sends an encoded Raft command to the leader (host-only:
// meshd forwards writes this way). It returns the command's result and the
// index of its entry, also with an error when the entry was applied and
// refused, so the caller can wait for its own replica to catch up.
func (c *Client) InternalApply(ctx context.Context, cmd []byte) (json.RawMessage, uint64, error) {
	var out []byte
	h, err := c.do(ctx, http.MethodPost, "/v1/internal/apply", cmd, &out, 0)
	return out, headerIndex(h), err
}

// QueryOptions make a read a blocking one, as Consul's: meshd answers once
// its replica applied an entry after WaitIndex, or after WaitTime (default
// 5 s, at most 60 s).
type QueryOptions struct {
	WaitIndex uint64
	WaitTime  time.Duration
}

// QueryMeta is what a read answered with: LastIndex is the Raft index it
// was read at, the WaitIndex of the next blocking read (0 when meshd gave
// none).
type QueryMeta struct {
	LastIndex uint64
}

func (c *Client) query(ctx context.Context, path string, q *QueryOptions, out any) (QueryMeta, error) {
	var extra time.Duration
	if q != nil && q.WaitIndex > 0 {
		v := url.Values{}
		v.Set("index", fmt.Sprint(q.WaitIndex))
		if q.WaitTime > 0 {
			v.Set("wait", q.WaitTime.String())
		}
		path += "?" + v.Encode()
		extra = q.WaitTime
		if extra <= 0 {
			extra = 5 * time.Second
		}
	}
	for {
		h, err := c.do(ctx, http.MethodGet, path, nil, out, extra)
		// A host serving its limit of blocking reads asks to come back
		// (429, Retry-After): a follower (meshctl --wait) does, rather
		// than fail.
		var e *Error
		if !errors.As(err, &e) || e.Status != http.StatusTooManyRequests || extra == 0 {
			return QueryMeta{LastIndex: headerIndex(h)}, err
		}
		after, perr := strconv.Atoi(h.Get("Retry-After"))
		if perr != nil || after < 1 || after > 60 {
			after = 1
		}
		select {
		case <-ctx.Done():
			return QueryMeta{}, err
		case <-time.After(time.Duration(after) * time.Second):
		}
	}
}
