package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hostmesh/hostmesh/pki"
)

// Config says how to reach and authenticate to a meshd.
type Config struct {
	// Addr is HOST:PORT of any meshd's API, or a URL. HTTPS is the
	// default; plain HTTP only when written as http:// (a --dev meshd).
	Addr string
	// TLS verifies the server (and may present a client certificate).
	// When nil it is built from CAFile, CertFile and KeyFile.
	TLS *tls.Config
	// CAFile is the mesh's CA certificate (MESH_CACERT). Empty: the
	// system's roots, which do not know a mesh's own CA.
	CAFile string
	// CertFile and KeyFile are an optional client certificate.
	CertFile, KeyFile string
	// Token is sent as "Authorization: Bearer TOKEN" when set; TokenFile
	// is read for it when Token is empty (a file keeps the token out of
	// argv and the environment, which other users can read in /proc).
	Token, TokenFile string
	// Timeout bounds one request (default 30 s); a blocking read gets its
	// wait on top.
	Timeout time.Duration
	// MaxIdleConnsPerHost keeps connections for clients that send many
	// requests in parallel to one meshd (default: net/http's 2).
	MaxIdleConnsPerHost int
	// IdleConnTimeout closes a kept connection unused this long (default:
	// net/http's 90 s). Hosts calling each other set it short: a mesh host
	// keeps one connection to the leader, and the leader one from every
	// host, each with its TLS state and buffers.
	IdleConnTimeout time.Duration
	// Host, set by a mesh host calling another (with its host certificate
	// in TLS), is sent as HostHeader: the host it claims to be.
	Host string
}

// Client talks to one meshd; any meshd answers, and writes are forwarded to
// the leader. It is safe for concurrent use.
type Client struct {
	base    string
	host    string
	token   string
	timeout time.Duration
	http    *http.Client
}

// NewClient checks the configuration (address, certificate and token
// files) and returns a client; it does not contact meshd.
func NewClient(cfg Config) (*Client, error) {
	base, err := BaseURL(cfg.Addr)
	if err != nil {
		return nil, err
	}
	token := cfg.Token
	if token == "" && cfg.TokenFile != "" {
		b, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("token file: %w", err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return nil, fmt.Errorf("token file %s is empty", cfg.TokenFile)
		}
	}
	if strings.ContainsAny(token, "\r\n") {
		return nil, fmt.Errorf("token: contains a line break")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.MaxIdleConnsPerHost > 0 {
		tr.MaxIdleConnsPerHost = cfg.MaxIdleConnsPerHost
	}
	if cfg.IdleConnTimeout > 0 {
		tr.IdleConnTimeout = cfg.IdleConnTimeout
	}
	if strings.HasPrefix(base, "https://") {
		tc := cfg.TLS
		if tc == nil {
			if tc, err = pki.ClientConfig(cfg.CAFile, cfg.CertFile, cfg.KeyFile); err != nil {
				return nil, err
			}
		}
		tr.TLSClientConfig = tc
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return &Client{base: base, host: cfg.Host, token: token, timeout: timeout, http: &http.Client{Transport: tr}}, nil
}

// BaseURL turns an address into the API's base URL: HOST:PORT becomes
// https://HOST:PORT; http:// and https:// URLs are kept.
func BaseURL(addr string) (string, error) {
	addr = strings.TrimSuffix(strings.TrimSpace(addr), "/")
	if addr == "" {
		return "", fmt.Errorf("no meshd address (set --addr or MESH_ADDR)")
	}
	switch {
	case strings.HasPrefix(addr, "https://"), strings.HasPrefix(addr, "http://"):
		return addr, nil
	case strings.Contains(addr, "://"):
		return "", fmt.Errorf("meshd address %q: want HOST:PORT, https://HOST:PORT or http://HOST:PORT", addr)
	}
	return "https://" + addr, nil
}

// URL is the client's base URL.
func (c *Client) URL() string { return c.base }

// Close drops idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// indexHeader is the replica's applied Raft index on a blocking read, and
// a write's entry index on the internal apply route.
const indexHeader = "X-Raft-Index"

// Do sends one request: in is encoded as JSON (a []byte or io.Reader is
// sent as is), and a 2xx answer is decoded into out (a *[]byte or
// *strings.Builder takes the raw body). A refusal is an *Error, an
// unreachable meshd a *ConnError. Typed methods cover every route; Do is
// for tests and tools that need a raw request.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	_, err := c.do(ctx, method, path, in, out, 0)
	return err
}

func (c *Client) do(ctx context.Context, method, path string, in, out any, extra time.Duration) (http.Header, error) {
	var body io.Reader
	switch v := in.(type) {
	case nil:
	case []byte:
		body = bytes.NewReader(v)
	case io.Reader:
		body = v
	default:
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout+extra)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("request %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.host != "" {
		req.Header.Set(HostHeader, c.host)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &ConnError{URL: c.base, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, &ConnError{URL: c.base, Err: fmt.Errorf("read answer of %s %s: %w", method, path, err)}
	}
	if resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Message = fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
		}
		return resp.Header, e
	}
	switch o := out.(type) {
	case nil:
	case *[]byte:
		*o = data
	case *strings.Builder:
		o.Write(data)
	default:
		if err := json.Unmarshal(data, out); err != nil {
			return resp.Header, fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return resp.Header, nil
}

// headerIndex reads the Raft index header, 0 when absent.
func headerIndex(h http.Header) uint64 {
	if h == nil {
		return 0
	}
	i, _ := strconv.ParseUint(h.Get(indexHeader), 10, 64)
	return i
}

// HostHeader names the host a mesh host claims to be on host-only routes;
// meshd refuses the request when it is not the caller's certificate's host.
const HostHeader = "X-Mesh-Host"
