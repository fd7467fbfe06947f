// Package webui is the web dashboard every meshd serves at /ui/: plain
// HTML, CSS and JavaScript embedded in the binary. Nothing is fetched at run
// time but the page's own three files and the mesh's API on the same
// origin (the Content-Security-Policy says so to the browser), so it works
// on an air-gapped management network and needs no build step.
//
// The page reads the same public API as meshctl: blocking reads
// (?index=&wait=) tell it of every change, and it then re-reads the
// listings. Actions POST to the API with the bearer token typed in the
// page, if any.
package webui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// files is the dashboard's directory: index.html, app.css, app.js.
func files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// csp allows the page's own files and API calls to its origin only: no
// inline script or style, no other host, no framing.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the dashboard. Mount it under /ui/ with the prefix
// stripped.
func Handler() http.Handler {
	fileServer := http.FileServerFS(files())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// A new meshd version must not run against a cached old page.
		h.Set("Cache-Control", "no-cache")
		fileServer.ServeHTTP(w, r)
	})
}
