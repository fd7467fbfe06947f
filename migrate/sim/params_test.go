package sim

import (
	"context"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/migrate"
)

// TestLastMigrationRecordsParams: the source keeps what each migration was
// asked for, TLS included, so mesh tests can check the executor passed the
// cluster's transport; a VM never migrated from here has no record.
func TestLastMigrationRecordsParams(t *testing.T) {
	_, c, a, b := pair(t)
	if err := a.Define(VMSpec{Name: "web", MemoryMiB: 256, VCPUs: 1}); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.LastMigration("web"); ok {
		t.Fatal("record of a migration before any started")
	}
	want := migrate.Params{DestURI: b.URI(), BandwidthMiB: 100, TLS: true, CopyStorage: []string{"vda"}}
	j, err := a.Migrate(context.Background(), "web", want)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := a.LastMigration("web")
	if !ok || !got.TLS || got.DestURI != want.DestURI || got.BandwidthMiB != 100 || len(got.CopyStorage) != 1 {
		t.Fatalf("LastMigration = %+v, %v; want %+v", got, ok, want)
	}
	got.CopyStorage[0] = "changed"
	if again, _ := a.LastMigration("web"); again.CopyStorage[0] != "vda" {
		t.Fatalf("LastMigration shares its slice with the caller: %v", again.CopyStorage)
	}
	if !runUntilDone(t, c, j, 30*time.Second) || j.Err() != nil {
		t.Fatalf("migration did not finish: %v", j.Err())
	}
	j, err = b.Migrate(context.Background(), "web", migrate.Params{DestURI: a.URI(), BandwidthMiB: 100})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := b.LastMigration("web"); !ok || got.TLS {
		t.Fatalf("plain migration back: LastMigration = %+v, %v; want TLS false", got, ok)
	}
	if !runUntilDone(t, c, j, 30*time.Second) || j.Err() != nil {
		t.Fatalf("migration back did not finish: %v", j.Err())
	}
}
