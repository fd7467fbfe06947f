package node

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// HTTP server limits. WriteTimeout covers the longest blocking read (60 s)
// with a margin; a leave, which answers when its drain ends, extends its
// own deadline (handleLeave).
const (
	apiReadHeaderTimeout = 10 * time.Second
	apiReadTimeout       = 30 * time.Second
	apiWriteTimeout      = maxBlockingWait + 15*time.Second
	apiIdleTimeout       = 2 * time.Minute
	// maxBodyBytes caps every request body; routes that take less decode
	// with a smaller cap of their own.
	maxBodyBytes = 2 << 20
)

// serveAPI serves the API on ln: HTTPS with the host certificate (a client
// certificate is optional, verified when given), plain HTTP only in --dev.
func (n *Node) serveAPI(ln net.Listener) {
	n.api = &http.Server{
		Handler:           limitBodies(limitBlocking(n.routes(), n.cfg.MaxBlockingReads)),
		ReadHeaderTimeout: apiReadHeaderTimeout,
		ReadTimeout:       apiReadTimeout,
		WriteTimeout:      apiWriteTimeout,
		IdleTimeout:       apiIdleTimeout,
		// Refused TLS handshakes and broken requests go to meshd's log.
		ErrorLog: slog.NewLogLogger(n.log.With("listener", "api").Handler(), slog.LevelWarn),
	}
	if n.cfg.TLS != nil {
		n.api.TLSConfig = n.cfg.TLS.APIServerConfig()
		ln = tls.NewListener(ln, n.api.TLSConfig)
	}
	n.go_(func() { _ = n.api.Serve(ln) })
}

// limitBodies caps every request body (http.MaxBytesReader: a longer body
// fails the read and the connection is not reused).
func limitBodies(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		h.ServeHTTP(w, r)
	})
}
