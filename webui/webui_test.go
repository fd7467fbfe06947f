package webui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Result()
}

// The dashboard's three files are served with a policy that lets the page
// load nothing but them and talk to nothing but its own origin.
func TestServesTheDashboard(t *testing.T) {
	for path, ctype := range map[string]string{
		"/":           "text/html",
		"/index.html": "text/html",
		"/app.js":     "text/javascript",
		"/app.css":    "text/css",
	} {
		resp := get(t, path)
		body, _ := io.ReadAll(resp.Body)
		if path == "/index.html" {
			// FileServer redirects index.html to the directory.
			if resp.StatusCode != http.StatusMovedPermanently {
				t.Errorf("%s: %s", path, resp.Status)
			}
			continue
		}
		if resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Fatalf("%s: %s, %d bytes", path, resp.Status, len(body))
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, ctype) {
			t.Errorf("%s: Content-Type %q, want %s", path, ct, ctype)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
	}
	if resp := get(t, "/nope.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/nope.js: %s", resp.Status)
	}
}

// Nothing is fetched at run time: no file names another origin, and the
// page loads only its own script and style sheet (no inline code, which
// the policy would block anyway).
func TestNothingFromElsewhere(t *testing.T) {
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	err := fs.WalkDir(files(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(files(), path)
		if err != nil {
			return err
		}
		if m := external.Find(data); m != nil {
			t.Errorf("%s refers to %s", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	html, _ := fs.ReadFile(files(), "index.html")
	for _, tag := range regexp.MustCompile(`<(script|link)[^>]*>`).FindAll(html, -1) {
		s := string(tag)
		ok := s == `<script src="app.js" defer>` || s == `<link rel="stylesheet" href="app.css">` || s == `<link rel="icon" href="data:,">`
		if !ok {
			t.Errorf("index.html loads %s", s)
		}
	}
	if regexp.MustCompile(`<script>|\sstyle="|\son[a-z]+="`).Match(html) {
		t.Error("index.html has inline script or style")
	}
}
