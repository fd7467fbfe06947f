package benchkit

import (
	"fmt"
	"time"
)

// Poll calls cond every interval until it returns true, and returns how long
// that took; an error when the deadline passes first. Benchmarks wait on
// conditions, never on fixed sleeps.
func Poll(timeout, interval time.Duration, what string, cond func() bool) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		if cond() {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return time.Since(start), fmt.Errorf("waiting for %s: not true after %s", what, timeout)
		}
		time.Sleep(interval)
	}
}
