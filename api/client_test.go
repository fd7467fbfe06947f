package api

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/pki"
)

// recorder is a fake meshd that records what it was sent.
type recorder struct {
	mu    sync.Mutex
	reqs  []*http.Request
	auth  []string
	serve func(w http.ResponseWriter, r *http.Request)
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, r)
	rec.auth = append(rec.auth, r.Header.Get("Authorization"))
	rec.mu.Unlock()
	rec.serve(w, r)
}

func (rec *recorder) last() (*http.Request, string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.reqs[len(rec.reqs)-1], rec.auth[len(rec.auth)-1]
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestBearerTokenOnlyWhenSet(t *testing.T) {
	rec := &recorder{serve: func(w http.ResponseWriter, r *http.Request) { _ = json.NewEncoder(w).Encode(Status{Self: "h1"}) }}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	ctx := context.Background()

	if st, err := newClient(t, Config{Addr: srv.URL}).Status(ctx); err != nil || st.Self != "h1" {
		t.Fatalf("status: %+v %v", st, err)
	}
	if _, auth := rec.last(); auth != "" {
		t.Fatalf("no token set, yet Authorization %q was sent", auth)
	}
	if _, err := newClient(t, Config{Addr: srv.URL, Token: "s3cret"}).Status(ctx); err != nil {
		t.Fatal(err)
	}
	if _, auth := rec.last(); auth != "Bearer s3cret" {
		t.Fatalf("Authorization %q, want Bearer s3cret", auth)
	}
	file := filepath.Join(t.TempDir(), "token")
	_ = os.WriteFile(file, []byte("from-file\n"), 0o600)
	if _, err := newClient(t, Config{Addr: srv.URL, TokenFile: file}).Status(ctx); err != nil {
		t.Fatal(err)
	}
	if _, auth := rec.last(); auth != "Bearer from-file" {
		t.Fatalf("token file: Authorization %q", auth)
	}
	// --token wins over the file.
	if _, err := newClient(t, Config{Addr: srv.URL, Token: "flag", TokenFile: file}).Status(ctx); err != nil {
		t.Fatal(err)
	}
	if _, auth := rec.last(); auth != "Bearer flag" {
		t.Fatalf("token and file: Authorization %q", auth)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	_ = os.WriteFile(empty, []byte("\n"), 0o600)
	for _, cfg := range []Config{
		{Addr: srv.URL, TokenFile: empty},
		{Addr: srv.URL, TokenFile: filepath.Join(t.TempDir(), "missing")},
		{Addr: srv.URL, Token: "a\r\nX-Evil: 1"},
		{Addr: ""},
		{Addr: "ftp://h1:7400"},
	} {
		if _, err := NewClient(cfg); err == nil {
			t.Errorf("NewClient(%+v) accepted", cfg)
		}
	}
}

func TestErrorsDecodeIntoAPIError(t *testing.T) {
	rec := &recorder{serve: func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/migrations":
			w.WriteHeader(http.StatusConflict)
			_ = json.NewEncoder(w).Encode(Error{Message: "migrate vm7 to h1: refused", Kind: KindRefused,
				Checks: []CheckResult{{Name: "distinct-hosts", Message: "vm7 already runs on h1"}}})
		case "/v1/internal/apply":
			w.Header().Set("X-Raft-Index", "42")
			w.WriteHeader(http.StatusConflict)
			_ = json.NewEncoder(w).Encode(Error{Message: "rejected", Kind: KindRejected})
		default:
			http.Error(w, "proxy says no", http.StatusBadGateway)
		}
	}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	c := newClient(t, Config{Addr: srv.URL})
	ctx := context.Background()

	_, err := c.Migrate(ctx, MigrateRequest{VM: "vm7", To: "h1"})
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 409 || ae.Kind != KindRefused || len(ae.Checks) != 1 || ae.Checks[0].Name != "distinct-hosts" {
		t.Fatalf("refusal: %#v", err)
	}
	req, _ := rec.last()
	if req.Method != "POST" || req.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("migrate sent %s %s", req.Method, req.Header.Get("Content-Type"))
	}
	// The index of an applied but refused command comes back with the error.
	if _, idx, err := c.InternalApply(ctx, []byte{1, '{', '}'}); idx != 42 || !errors.As(err, &ae) || ae.Kind != KindRejected {
		t.Fatalf("internal apply: index %d, %v", idx, err)
	}
	// A body that is not meshd's: the status and the text.
	if _, err := c.Hosts(ctx); !errors.As(err, &ae) || ae.Status != 502 || !strings.Contains(ae.Message, "proxy says no") {
		t.Fatalf("non-JSON error: %#v", err)
	}
	// Nobody listening: a ConnError, nothing else.
	srv.Close()
	var ce *ConnError
	if _, err := c.Hosts(ctx); !errors.As(err, &ce) || errors.As(err, &ae) {
		t.Fatalf("closed server: %#v", err)
	}
}

func TestBlockingReadsAskForTheIndexAndReportIt(t *testing.T) {
	rec := &recorder{serve: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Raft-Index", "17")
		_ = json.NewEncoder(w).Encode(Migration{ID: "m3", State: MigRunning})
	}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	c := newClient(t, Config{Addr: srv.URL})
	m, meta, err := c.Migration(context.Background(), "m3", nil)
	if err != nil || m.ID != "m3" || meta.LastIndex != 17 {
		t.Fatalf("read: %+v %+v %v", m, meta, err)
	}
	if req, _ := rec.last(); req.URL.RawQuery != "" {
		t.Fatalf("a plain read sent %q", req.URL.RawQuery)
	}
	if _, _, err := c.Migration(context.Background(), "m3", &QueryOptions{WaitIndex: 17, WaitTime: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if req, _ := rec.last(); req.URL.Query().Get("index") != "17" || req.URL.Query().Get("wait") != "5s" {
		t.Fatalf("blocking read sent %q", req.URL.RawQuery)
	}
	if _, _, err := c.DrainStatus(context.Background(), "h 1", nil); err != nil {
		t.Fatal(err)
	}
	if req, _ := rec.last(); req.URL.EscapedPath() != "/v1/hosts/h%201/drain" {
		t.Fatalf("host name not escaped: %s", req.URL.EscapedPath())
	}

	// The watcher: the first read at once, then the index of the last answer.
	w := Watcher{Gap: 10 * time.Millisecond, Wait: time.Second}
	q, err := w.Next(context.Background())
	if err != nil || q != nil {
		t.Fatalf("first read: %+v %v", q, err)
	}
	w.Saw(QueryMeta{LastIndex: 17})
	start := time.Now()
	q, err = w.Next(context.Background())
	if err != nil || q == nil || q.WaitIndex != 17 || q.WaitTime != time.Second {
		t.Fatalf("second read: %+v %v", q, err)
	}
	if time.Since(start) < 5*time.Millisecond {
		t.Fatalf("the watcher did not keep its gap")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w.Saw(QueryMeta{})
	if _, err := w.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled watch: %v", err)
	}
}

func TestHTTPSByDefaultVerifiedWithTheMeshCA(t *testing.T) {
	ca, err := pki.NewCA(0)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile, _, err := ca.Save(dir)
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := ca.HostCert(pki.CertSpec{Name: "h1"})
	ht, err := pki.NewHostTLS(ca.Cert, kp)
	if err != nil {
		t.Fatal(err)
	}
	var peer string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer = ""
		if len(r.TLS.VerifiedChains) > 0 {
			peer = r.TLS.VerifiedChains[0][0].Subject.CommonName
		}
		_ = json.NewEncoder(w).Encode(Status{Self: "h1"})
	}))
	srv.TLS = ht.APIServerConfig()
	// httptest adds its own certificate to a config without Certificates,
	// and Go serves it ahead of GetCertificate to a client without SNI.
	srv.TLS.Certificates = []tls.Certificate{ht.Certificate()}
	srv.StartTLS()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "https://")
	ctx := context.Background()

	if base, _ := BaseURL(addr); base != "https://"+addr {
		t.Fatalf("HOST:PORT became %s, want https://", base)
	}
	if st, err := newClient(t, Config{Addr: addr, CAFile: caFile}).Status(ctx); err != nil || st.Self != "h1" {
		t.Fatalf("with the mesh CA: %v", err)
	}
	// Without it, the mesh's certificate is unknown; the error says what to set.
	var ce *ConnError
	if _, err := newClient(t, Config{Addr: addr}).Status(ctx); !errors.As(err, &ce) || !strings.Contains(err.Error(), "MESH_CACERT") {
		t.Fatalf("without the CA: %v", err)
	}
	// A client certificate is presented when given.
	alice, _ := ca.ClientCert(pki.CertSpec{Name: "alice"})
	certFile, keyFile, _ := alice.Save(dir)
	if _, err := newClient(t, Config{Addr: addr, CAFile: caFile, CertFile: certFile, KeyFile: keyFile}).Status(ctx); err != nil || peer != "alice" {
		t.Fatalf("with a client certificate: %v, server saw %q", err, peer)
	}
	// An explicit TLS config wins (meshd dials peers with its host certificate).
	if _, err := newClient(t, Config{Addr: addr, TLS: &tls.Config{RootCAs: ht.Pool(), Certificates: []tls.Certificate{ht.Certificate()}}}).Status(ctx); err != nil || peer != "h1" {
		t.Fatalf("explicit TLS: %v, server saw %q", err, peer)
	}
	// Plain HTTP against it only when written so, and it fails.
	if _, err := newClient(t, Config{Addr: "http://" + addr}).Status(ctx); err == nil {
		t.Fatal("plain HTTP to an HTTPS meshd succeeded")
	}
	// HTTPS against a plain server: the hint names http://.
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	if _, err := newClient(t, Config{Addr: strings.TrimPrefix(plain.URL, "http://"), CAFile: caFile}).Status(ctx); !errors.As(err, &ce) || !strings.Contains(err.Error(), "http://") {
		t.Fatalf("HTTPS to a plain meshd: %v", err)
	}
}

// TestBlockingReadRetriesWhenBusy: a blocking read answered 429 (the host
// serves its limit of them) comes back after Retry-After instead of
// failing; a plain read reports the 429.
func TestBlockingReadRetriesWhenBusy(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	rec := &recorder{serve: func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 || r.URL.Query().Get("index") == "" {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			_ = json.NewEncoder(w).Encode(Error{Message: "busy", Kind: KindBusy})
			return
		}
		w.Header().Set("X-Raft-Index", "8")
		_ = json.NewEncoder(w).Encode(Drain{Host: "h1"})
	}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	c := newClient(t, Config{Addr: srv.URL})
	d, meta, err := c.DrainStatus(context.Background(), "h1", &QueryOptions{WaitIndex: 7, WaitTime: time.Second})
	if err != nil || d.Host != "h1" || meta.LastIndex != 8 {
		t.Fatalf("blocking read after a 429: %+v %+v %v", d, meta, err)
	}
	mu.Lock()
	if calls != 2 {
		t.Errorf("%d calls, want the 429 and its retry", calls)
	}
	mu.Unlock()
	var ae *Error
	if _, _, err := c.DrainStatus(context.Background(), "h1", nil); !errors.As(err, &ae) || ae.Status != http.StatusTooManyRequests || ae.Kind != KindBusy {
		t.Fatalf("a plain read answered 429: %v", err)
	}
}
