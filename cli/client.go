package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"
)

// client talks to one meshd's API; any node answers, writes are forwarded.
type client struct {
	base string
	http *http.Client
}

func newClient(c *ucli.Context) *client {
	addr := c.String("addr")
	if !strings.HasPrefix(addr, "http://") && !strings.HasPrefix(addr, "https://") {
		addr = "http://" + addr
	}
	return &client{base: strings.TrimSuffix(addr, "/"), http: &http.Client{Timeout: 30 * time.Second}}
}

// apiErr is an error answer of meshd, with the checks that refused a migration.
type apiErr struct {
	Message string `json:"error"`
	Kind    string `json:"kind"`
	Checks  []struct {
		Name    string `json:"Name"`
		Message string `json:"Message"`
	} `json:"checks"`
	Status int `json:"-"`
}

func (e *apiErr) Error() string { return e.Message }

func (cl *client) do(ctx context.Context, method, path string, in, out any) error {
	_, err := cl.roundTrip(ctx, method, path, in, out)
	return err
}

// raftIndexHeader is the replica's applied Raft index, on every answer of
// a blocking read.
const raftIndexHeader = "X-Raft-Index"

// watchWait bounds one blocking read; watchGap is the least time between two.
const (
	watchWait = 5 * time.Second
	watchGap  = 200 * time.Millisecond
)

// watch reads path the way Consul's blocking queries do: with the index of
// the previous answer, meshd answers as soon as its state moved past it (or
// after watchWait). It returns the new index, 0 if meshd gave none. To keep
// a busy mesh from answering in a tight loop, it first waits out watchGap
// since the previous read.
func (cl *client) watch(ctx context.Context, path string, index uint64, last *time.Time, out any) (uint64, error) {
	if wait := watchGap - time.Since(*last); wait > 0 {
		select {
		case <-ctx.Done():
			return index, ctx.Err()
		case <-time.After(wait):
		}
	}
	if index > 0 {
		path += fmt.Sprintf("?index=%d&wait=%s", index, watchWait)
	} else if !last.IsZero() {
		// meshd gave no index: fall back to polling every 500 ms
		select {
		case <-ctx.Done():
			return index, ctx.Err()
		case <-time.After(500*time.Millisecond - watchGap):
		}
	}
	*last = time.Now()
	h, err := cl.roundTrip(ctx, "GET", path, nil, out)
	if err != nil {
		return index, err
	}
	next, _ := strconv.ParseUint(h.Get(raftIndexHeader), 10, 64)
	return next, nil
}

func (cl *client) roundTrip(ctx context.Context, method, path string, in, out any) (http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, cl.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("request %s %s: %w", method, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := cl.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach meshd at %s (set --addr or MESH_ADDR): %w", cl.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read answer of %s: %w", path, err)
	}
	if resp.StatusCode >= 300 {
		e := &apiErr{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Message = fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
		}
		return nil, e
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("decode answer of %s: %w", path, err)
		}
	}
	return resp.Header, nil
}

// Exit codes: 1 for a failed operation (refused, failed migration), 2 for
// bad usage or input, 3 when meshd cannot be reached or has no leader.
const (
	exitFailed      = 1
	exitUsage       = 2
	exitUnreachable = 3
)

// exitErr maps an error to the exit code scripts can branch on.
func exitErr(err error) error {
	if err == nil {
		return nil
	}
	var ae *apiErr
	if errors.As(err, &ae) {
		switch {
		case ae.Kind == "bad_request" || ae.Kind == "not_found":
			return ucli.Exit("error: "+ae.Message, exitUsage)
		case ae.Kind == "no_leader":
			return ucli.Exit("error: "+ae.Message, exitUnreachable)
		}
		return ucli.Exit("error: "+ae.Message, exitFailed)
	}
	var ec ucli.ExitCoder
	if errors.As(err, &ec) {
		return err
	}
	if strings.Contains(err.Error(), "cannot reach meshd") {
		return ucli.Exit("error: "+err.Error(), exitUnreachable)
	}
	return ucli.Exit("error: "+err.Error(), exitFailed)
}

// usage answers a wrong argument count with the command's help.
func usage(c *ucli.Context, want string) error {
	_ = ucli.ShowSubcommandHelp(c)
	return ucli.Exit("error: "+c.Command.Name+" needs "+want, exitUsage)
}

func printJSON(c *ucli.Context, v any) error {
	enc := json.NewEncoder(c.App.Writer)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
