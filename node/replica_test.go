package node

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"
)

// TestTailLogStoreKeepsTheLatest checks what a light replica's log must
// still answer: the latest entries (a follower's consistency check reads
// the one before an append), and a truncation of a conflicting suffix.
func TestTailLogStoreKeepsTheLatest(t *testing.T) {
	s := newTailLogStore(4)
	for i := uint64(1); i <= 10; i++ {
		if err := s.StoreLogs([]*raft.Log{{Index: i, Term: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if first != 7 || last != 10 {
		t.Fatalf("first %d last %d, want 7 and 10", first, last)
	}
	var l raft.Log
	if err := s.GetLog(6, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Errorf("entry 6 (dropped): %v, want ErrLogNotFound", err)
	}
	if err := s.GetLog(9, &l); err != nil || l.Index != 9 {
		t.Errorf("entry 9: %v %+v", err, l)
	}
	if err := s.DeleteRange(9, 10); err != nil { // a conflicting suffix
		t.Fatal(err)
	}
	if last, _ := s.LastIndex(); last != 8 {
		t.Errorf("after truncating 9-10: last %d, want 8", last)
	}
	if err := s.DeleteRange(7, 8); err != nil { // compaction of everything
		t.Fatal(err)
	}
	first, _ = s.FirstIndex()
	last, _ = s.LastIndex()
	if first != 0 || last != 0 {
		t.Errorf("after deleting all: first %d last %d, want 0 and 0", first, last)
	}
}

// TestTailLogStoreDropsConfigurationData: a replica whose FSM keeps no
// configurations keeps a configuration entry's index and term (what Raft
// reads back) without the server list, and every other entry whole.
func TestTailLogStoreDropsConfigurationData(t *testing.T) {
	s := newTailLogStore(4)
	s.dropConfigData = true
	if err := s.StoreLogs([]*raft.Log{{Index: 1, Term: 2, Type: raft.LogConfiguration, Data: []byte("servers")}, {Index: 2, Term: 2, Type: raft.LogCommand, Data: []byte("cmd")}}); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := s.GetLog(1, &l); err != nil || l.Term != 2 || l.Type != raft.LogConfiguration || l.Data != nil {
		t.Errorf("configuration entry: %v %+v, want term 2 and no data", err, l)
	}
	if err := s.GetLog(2, &l); err != nil || string(l.Data) != "cmd" {
		t.Errorf("command entry: %v %+v, want its data", err, l)
	}
}
