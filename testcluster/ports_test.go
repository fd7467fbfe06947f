package testcluster

import (
	"os"
	"syscall"
	"testing"
)

// TestPortBlockIsThisProcessOnly checks that this process's ports come
// from its block and that the block's lock refuses another claim: a second
// open file description of the lock file is what another process would
// hold, and its flock must fail.
func TestPortBlockIsThisProcessOnly(t *testing.T) {
	lo, hi := portBlock()
	if blockLockFile == nil {
		t.Fatalf("no port block claimed (sharing %d..%d): are %d test processes running?", lo, hi, (hi-lo)/portBlockSize)
	}
	if hi-lo != portBlockSize || lo < 10000 || hi > ephemeralLow() {
		t.Fatalf("block %d..%d: want %d ports within 10000..%d", lo, hi, portBlockSize, ephemeralLow())
	}
	other, err := os.Open(blockLockFile.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		t.Fatalf("a second claim of %s succeeded: two processes would share ports %d..%d", blockLockFile.Name(), lo, hi)
	}
	ps, err := freePorts(20)
	if err != nil {
		t.Fatal(err)
	}
	defer releasePorts(ps...)
	for _, p := range ps {
		if p < lo || p >= hi {
			t.Errorf("port %d outside this process's block %d..%d", p, lo, hi)
		}
	}
}
