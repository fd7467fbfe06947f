package node

import (
	"testing"

	"github.com/hashicorp/raft"
)

// A snapshot falls due once snapshotLogBytes of entries were stored, and
// not before: configuration entries of a large mesh are what fill it.
func TestCountingLogStoreSnapshotDueByBytes(t *testing.T) {
	c := newLogBytes()
	s := countingLogStore{LogStore: raft.NewInmemStore(), c: c}
	entry := func(i uint64) *raft.Log {
		return &raft.Log{Index: i, Term: 1, Type: raft.LogConfiguration, Data: make([]byte, 50<<10)}
	}
	var i uint64
	for ; int64(i+1)*(50<<10) < snapshotLogBytes; i++ {
		if err := s.StoreLog(entry(i + 1)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-c.due:
		t.Fatalf("snapshot due after %d bytes, before %d", c.n.Load(), snapshotLogBytes)
	default:
	}
	if err := s.StoreLogs([]*raft.Log{entry(i + 1), entry(i + 2)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.due:
	default:
		t.Fatalf("no snapshot due after %d bytes (budget %d)", c.n.Load(), snapshotLogBytes)
	}
	if last, _ := s.LastIndex(); last != i+2 {
		t.Fatalf("last index %d, want %d: the entries must reach the store", last, i+2)
	}
}
