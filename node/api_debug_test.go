package node

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDebugProfile(t *testing.T) {
	n := &Node{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/debug/pprof/{profile}", n.handleDebugProfile)
	get := func(path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		return w
	}
	if w := get("/v1/debug/pprof/goroutine?debug=1"); w.Code != 200 || !strings.Contains(w.Body.String(), "goroutine profile: total") {
		t.Errorf("goroutine profile: %d %q", w.Code, w.Body.String())
	}
	if w := get("/v1/debug/pprof/heap"); w.Code != 200 || w.Body.Len() == 0 {
		t.Errorf("heap profile: %d, %d bytes", w.Code, w.Body.Len())
	}
	for _, bad := range []string{"/v1/debug/pprof/nosuch", "/v1/debug/pprof/heap?debug=7"} {
		if w := get(bad); w.Code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, w.Code)
		}
	}
}
