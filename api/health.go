package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// HealthCheck is one readiness condition of a meshd.
type HealthCheck struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Message string `json:"message"`
}

// Readiness is the body of GET /v1/health/ready, sent with 200 when Ready
// and 503 when not. NotReady names the failed checks.
type Readiness struct {
	Host     string        `json:"host"`
	Ready    bool          `json:"ready"`
	NotReady []string      `json:"not_ready,omitempty"`
	Checks   []HealthCheck `json:"checks"`
}

// Liveness is the body of GET /v1/health/live.
type Liveness struct {
	Host string `json:"host"`
	Live bool   `json:"live"`
}

// Ready asks a meshd whether it can serve. Not ready (503) returns the
// Readiness, which says which checks failed, and an *Error with Status 503.
func (c *Client) Ready(ctx context.Context) (Readiness, error) {
	var rd Readiness
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/health/ready", nil)
	if err != nil {
		return rd, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return rd, &ConnError{URL: c.base, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return rd, &ConnError{URL: c.base, Err: fmt.Errorf("read readiness: %w", err)}
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		return rd, &Error{Status: resp.StatusCode, Message: fmt.Sprintf("GET /v1/health/ready: %s", resp.Status)}
	}
	if err := json.Unmarshal(data, &rd); err != nil {
		return rd, fmt.Errorf("decode readiness (%s): %w", resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK {
		return rd, &Error{Status: resp.StatusCode, Kind: "not_ready",
			Message: fmt.Sprintf("%s is not ready: %s", rd.Host, strings.Join(rd.NotReady, ", "))}
	}
	return rd, nil
}

// Live asks whether a meshd's process serves.
func (c *Client) Live(ctx context.Context) (Liveness, error) {
	var l Liveness
	err := c.Do(ctx, http.MethodGet, "/v1/health/live", nil, &l)
	return l, err
}
