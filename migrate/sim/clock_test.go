package sim

import (
	"testing"
	"time"
)

func TestManualClockFiresInOrder(t *testing.T) {
	c := NewManualClock()
	var got []string
	stopA := c.every(300*time.Millisecond, func(now time.Time) { got = append(got, "a"+now.Sub(epoch).String()) })
	c.every(200*time.Millisecond, func(now time.Time) { got = append(got, "b"+now.Sub(epoch).String()) })
	c.Advance(600 * time.Millisecond)
	want := []string{"b200ms", "a300ms", "b400ms", "a600ms", "b600ms"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	stopA()
	got = nil
	c.Advance(300 * time.Millisecond)
	if len(got) != 1 || got[0] != "b800ms" {
		t.Errorf("after stop got %v, want only b800ms", got)
	}
	if now := c.Now().Sub(epoch); now != 900*time.Millisecond {
		t.Errorf("now = %v, want 900ms", now)
	}
}

func TestTickerDropsLikeTimeTicker(t *testing.T) {
	c := NewManualClock()
	ch, stop := c.NewTicker(time.Second)
	defer stop()
	c.Advance(5 * time.Second)
	if tick := <-ch; tick.Sub(epoch) != time.Second {
		t.Errorf("first tick at %v, want 1s (later ones dropped while unread)", tick.Sub(epoch))
	}
	select {
	case tick := <-ch:
		t.Errorf("unexpected buffered tick %v", tick)
	default:
	}
}

func TestDrivenClockRunsScaledAndIdles(t *testing.T) {
	c := NewClock(1000, 100*time.Millisecond)
	defer c.Stop()
	start := c.Now()
	ch, stop := c.NewTicker(time.Second)
	t0 := time.Now()
	var ticks int
	deadline := time.After(5 * time.Second)
	for ticks < 10 {
		select {
		case <-ch:
			ticks++
		case <-deadline:
			t.Fatalf("only %d ticks of 1s simulated in 5s real at scale 1000", ticks)
		}
	}
	real := time.Since(t0)
	stop()
	if sim := c.Now().Sub(start); sim < 10*time.Second {
		t.Errorf("simulated %v", sim)
	}
	if real < 5*time.Millisecond {
		t.Errorf("10s simulated in %v real at scale 1000: ran faster than scaled", real)
	}
	// with nothing subscribed, simulated time stands still
	// (the driver may finish a catch-up step after stop, so measure from
	// the moment it parked)
	waitFor(t, "driver to park", 5*time.Second, func() bool { return c.parked.Load() })
	idle := c.Now()
	<-time.After(100 * time.Millisecond) // 100s simulated at scale 1000, were it running
	if moved := c.Now().Sub(idle); moved != 0 {
		t.Errorf("idle clock moved %v after the driver parked", moved)
	}
}
