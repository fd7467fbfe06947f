package sim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/migrate"
)

// remote starts a destination host in its own registry (as another meshd
// process would have) behind Handler, and returns it with its sim+http URI.
func remote(t *testing.T, name string, memMiB uint64) (*Host, string) {
	t.Helper()
	r := NewRegistry(Config{Clock: NewManualClock()})
	t.Cleanup(r.Close)
	h, err := r.AddHost(HostSpec{Name: name, MemTotalMiB: memMiB, CPUs: 4})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/sim/", Handler(h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return h, "sim+" + srv.URL + "/v1/sim"
}

func TestMigrationAcrossProcesses(t *testing.T) {
	_, c, a, _ := pair(t)
	far, uri := remote(t, "far", 8192)
	_ = a.Define(VMSpec{Name: "web", MemoryMiB: 1024, VCPUs: 2, DirtyMiBps: 5})
	j, err := a.Migrate(context.Background(), "web", migrate.Params{DestURI: uri, BandwidthMiB: 200, MaxDowntime: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if far.Incoming() != 1 || far.FreeMiB() != 8192-1024 {
		t.Errorf("remote incoming=%d free=%d, want the VM reserved", far.Incoming(), far.FreeMiB())
	}
	if !runUntilDone(t, c, j, time.Minute) || j.Err() != nil {
		t.Fatalf("cross-process migration: %v", j.Err())
	}
	if !slices.Contains(far.VMNames(), "web") || slices.Contains(a.VMNames(), "web") {
		t.Errorf("after: source %v remote %v", a.VMNames(), far.VMNames())
	}
	spec, _, _ := far.VM("web")
	if spec.VCPUs != 2 || spec.DirtyMiBps != 5 {
		t.Errorf("definition did not travel: %+v", spec)
	}
}

func TestRemoteRefusesAndAbortReleases(t *testing.T) {
	_, c, a, _ := pair(t)
	far, uri := remote(t, "far", 1024)
	_ = a.Define(VMSpec{Name: "big", MemoryMiB: 2048})
	_ = a.Define(VMSpec{Name: "small", MemoryMiB: 512})
	_, err := a.Migrate(context.Background(), "big", migrate.Params{DestURI: uri})
	if !errors.Is(err, ErrNoMemory) || !strings.Contains(err.Error(), "need 2048 MiB") {
		t.Errorf("err = %v, want ErrNoMemory with the remote's message", err)
	}
	j, err := a.Migrate(context.Background(), "small", migrate.Params{DestURI: uri, BandwidthMiB: 10})
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Second)
	if err := j.Abort(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "remote to release", 5*time.Second, func() bool { return far.Incoming() == 0 })
	if far.FreeMiB() != 1024 {
		t.Errorf("remote free %d after release", far.FreeMiB())
	}
	// a source that dies never releases: the destination drops its reservations
	if _, err := a.Migrate(context.Background(), "small", migrate.Params{DestURI: uri}); err != nil {
		t.Fatal(err)
	}
	if n := far.DropIncomingFrom("nobody"); n != 0 {
		t.Errorf("dropped %d reservations of an unknown source", n)
	}
	if n := far.DropIncomingFrom(a.Name()); n != 1 || far.FreeMiB() != 1024 {
		t.Errorf("dropped %d, free %d MiB; want 1 and all memory back", n, far.FreeMiB())
	}
}

func TestRemoteVanishesAtSwitchOver(t *testing.T) {
	_, c, a, _ := pair(t)
	r := NewRegistry(Config{Clock: NewManualClock()})
	defer r.Close()
	far, _ := r.AddHost(HostSpec{Name: "far", MemTotalMiB: 4096})
	srv := httptest.NewServer(Handler(far))
	_ = a.Define(VMSpec{Name: "v", MemoryMiB: 256})
	j, err := a.Migrate(context.Background(), "v", migrate.Params{DestURI: "sim+" + srv.URL, BandwidthMiB: 10})
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if !runUntilDone(t, c, j, time.Minute) {
		t.Fatal("job did not end")
	}
	if j.Err() == nil || !slices.Contains(a.VMNames(), "v") {
		t.Errorf("err=%v source=%v: want failure and the VM kept on the source", j.Err(), a.VMNames())
	}
}

func TestHandlerRejectsNonsense(t *testing.T) {
	h, uri := remote(t, "far", 1024)
	base := strings.TrimPrefix(uri, "sim+")
	for _, tc := range []struct {
		method, op string
		body       string
		want       int
	}{
		{http.MethodGet, "reserve", "", http.StatusMethodNotAllowed},
		{http.MethodPost, "explode", "", http.StatusNotFound},
		{http.MethodPost, "commit", "", http.StatusBadRequest}, // empty body
		{http.MethodPost, "commit", `{"id":""}`, http.StatusBadRequest},
		{http.MethodPost, "commit", `{"id":"x"} junk`, http.StatusBadRequest},
		{http.MethodPost, "commit", `{"id":"nope"}`, http.StatusConflict}, // well formed, no such reservation
		// A VM with no name was once held, and the host's inventory then
		// refused for good.
		{http.MethodPost, "reserve", `{"id":"r1","source":"near","vm":{"MemoryMiB":64}}`, http.StatusBadRequest},
		{http.MethodPost, "reserve", `{"id":"r1","source":"near","vm":{"Name":"v","MemoryMiB":64,"Evil":1}}`, http.StatusBadRequest},
		{http.MethodPost, "reserve", `{"id":"r1","source":"near","vm":{"Name":"v","MemoryMiB":0}}`, http.StatusBadRequest},
		{http.MethodPost, "reserve", `{"id":"r1","source":"near","vm":{"Name":"v","MemoryMiB":99999999999}}`, http.StatusBadRequest},
		{http.MethodPost, "reserve", `{"id":"r1","source":"","vm":{"Name":"v","MemoryMiB":64}}`, http.StatusBadRequest},
		{http.MethodPost, "reserve", `{"id":"r1","source":"near","vm":{"Name":"v","MemoryMiB":64,"VCPUs":-3}}`, http.StatusBadRequest},
	} {
		req, _ := http.NewRequest(tc.method, base+"/"+tc.op, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s %s = %d, want %d", tc.method, tc.op, tc.body, resp.StatusCode, tc.want)
		}
	}
	if n := h.Incoming(); n != 0 {
		t.Errorf("%d reservations held after refused requests", n)
	}
	_ = h.Define(VMSpec{Name: "x", MemoryMiB: 1})
	resp, err := http.Get(base + "/domains")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doms []migrate.Domain
	if err := json.NewDecoder(resp.Body).Decode(&doms); err != nil || len(doms) != 1 || doms[0].Name != "x" {
		t.Errorf("domains = %+v, %v", doms, err)
	}
}
