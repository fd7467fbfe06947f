package lab

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestCountersSkipKernelLines(t *testing.T) {
	g := &Guest{Spec: GuestSpec{Name: "c"}, ConsoleLog: filepath.Join(t.TempDir(), "c.log")}
	log := "hm-agent start host=c\ncounter 1\n[    3.1] virtio_net virtio0 eth0: link up\ncounter 2\r\ncounter 3\n"
	if err := os.WriteFile(g.ConsoleLog, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := g.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{1, 2, 3}; !reflect.DeepEqual(got, want) {
		t.Fatalf("counters = %v, want %v", got, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.WaitCounter(ctx, 3); err != nil {
		t.Fatalf("WaitCounter(3): %v", err)
	}
}

// A dead workload must end the wait at once, not after the deadline.
func TestWaitCounterStopsOnDeadGuest(t *testing.T) {
	g := &Guest{Spec: GuestSpec{Name: "d"}, ConsoleLog: filepath.Join(t.TempDir(), "d.log")}
	log := "hm-agent start host=d\nKilled\nhm-init: hm-agent exited with 137\n"
	if err := os.WriteFile(g.ConsoleLog, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	err := g.WaitCounter(ctx, 1)
	if !errors.Is(err, ErrGuestDead) {
		t.Fatalf("WaitCounter = %v, want ErrGuestDead", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("WaitCounter took %s to notice the dead guest", time.Since(start))
	}
}

func TestWaitCounterTimesOut(t *testing.T) {
	g := &Guest{Spec: GuestSpec{Name: "e"}, ConsoleLog: filepath.Join(t.TempDir(), "missing.log")}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := g.WaitCounter(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitCounter on a console never written = %v, want deadline exceeded", err)
	}
}
