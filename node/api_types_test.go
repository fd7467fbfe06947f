package node

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
)

// fill sets every field of v (recursively: embedded structs, slices, maps)
// to a non-zero value, so that no field can hide behind omitempty.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(3)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(5)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1.5)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0))
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem())
		v.Set(p)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	}
}

// TestAPITypesMirrorWhatMeshdWrites: every response meshd writes from its
// own types decodes into package api's twin with no field left over, and
// encodes back to the same JSON. A field added to the state (package fsm)
// and shown by the API must be added to package api too; this test names it.
func TestAPITypesMirrorWhatMeshdWrites(t *testing.T) {
	for _, c := range []struct {
		name        string
		server, api any
	}{
		{"fsm.Host", &fsm.Host{}, &api.Host{}},
		{"hostView", &hostView{}, &api.HostView{}},
		{"fsm.VM", &fsm.VM{}, &api.VM{}},
		{"vmView", &vmView{}, &api.VM{}},
		{"fsm.Event", &fsm.Event{}, &api.Event{}},
		{"eventsResponse", &eventsResponse{}, &api.Events{}},
		{"fsm.Migration", &fsm.Migration{}, &api.Migration{}},
		{"fsm.Cluster", &fsm.Cluster{}, &api.Cluster{}},
		{"fsm.Drain", &fsm.Drain{}, &api.Drain{}},
		{"dryRunCandidate", &dryRunCandidate{}, &api.Candidate{}},
		{"migrateResponse", &migrateResponse{}, &api.MigrateResponse{}},
		{"fsm.VMSettings", &fsm.VMSettings{}, &api.VMSettings{}},
		{"fsm.AffinityRule", &fsm.AffinityRule{}, &api.AffinityRule{}},
	} {
		fill(reflect.ValueOf(c.server).Elem())
		want, err := json.Marshal(c.server)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(want))
		dec.DisallowUnknownFields()
		if err := dec.Decode(c.api); err != nil {
			t.Errorf("%s → %T: %v (add the field to package api)", c.name, c.api, err)
			continue
		}
		got, _ := json.Marshal(c.api)
		var a, b any
		_ = json.Unmarshal(want, &a)
		_ = json.Unmarshal(got, &b)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s and %T encode differently:\nmeshd %s\napi   %s", c.name, c.api, want, got)
		}
	}
	// The migration states and cluster defaults clients compare against.
	for s, a := range map[fsm.MigrationState]api.MigrationState{fsm.MigQueued: api.MigQueued, fsm.MigRunning: api.MigRunning,
		fsm.MigSucceeded: api.MigSucceeded, fsm.MigFailed: api.MigFailed, fsm.MigCancelled: api.MigCancelled} {
		if string(s) != string(a) || s.Final() != a.Final() {
			t.Errorf("migration state %s: api has %s", s, a)
		}
	}
	for s, a := range map[fsm.HostState]api.HostState{fsm.HostUp: api.HostUp, fsm.HostDown: api.HostDown, fsm.HostLeft: api.HostLeft,
		fsm.HostMaintenance: api.HostMaintenance, fsm.HostPreparingForMaintenance: api.HostPreparingForMaintenance,
		fsm.HostNonOperational: api.HostNonOperational} {
		if string(s) != string(a) {
			t.Errorf("host state %s: api has %s", s, a)
		}
	}
	for s, a := range map[string]string{fsm.DrainActive: api.DrainActive, fsm.DrainDone: api.DrainDone,
		fsm.DrainStuck: api.DrainStuck, fsm.DrainCancelled: api.DrainCancelled, fsm.BandwidthAuto: api.BandwidthAuto,
		fsm.BandwidthFixed: api.BandwidthFixed, fsm.VMRunning: api.VMRunning, fsm.VMPaused: api.VMPaused,
		fsm.VMShutoff: api.VMShutoff, fsm.VMUnknown: api.VMUnknown,
		fsm.TransportTLS: api.TransportTLS, fsm.TransportPlain: api.TransportPlain, fsm.AlarmSplitBrain: api.AlarmSplitBrain,
		fsm.AffinityTogether: api.AffinityTogether, fsm.AffinityApart: api.AffinityApart, fsm.AffinityHostMust: api.AffinityHostMust,
		fsm.AffinityHostPrefer: api.AffinityHostPrefer, fsm.AffinityHostAvoid: api.AffinityHostAvoid} {
		if s != a {
			t.Errorf("constant %q: api has %q", s, a)
		}
	}
}
