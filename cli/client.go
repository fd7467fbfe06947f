package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, cl.base+path, body)
	if err != nil {
		return fmt.Errorf("request %s %s: %w", method, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := cl.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach meshd at %s (set --addr or MESH_ADDR): %w", cl.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read answer of %s: %w", path, err)
	}
	if resp.StatusCode >= 300 {
		e := &apiErr{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Message = fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
		}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode answer of %s: %w", path, err)
		}
	}
	return nil
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
