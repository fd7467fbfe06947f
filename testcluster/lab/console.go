package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strconv"
	"time"
)

// counterLine matches the workload's once-a-second line. The serial console
// also carries kernel and init messages, which are skipped.
var counterLine = regexp.MustCompile(`counter (\d+)`)

// Counters returns every counter the guest printed, in order. A guest that
// kept running across a migration shows 1, 2, 3, ... with no gap and no
// second 1 (which would mean it restarted).
func (g *Guest) Counters() ([]int, error) {
	f, err := os.Open(g.ConsoleLog)
	if err != nil {
		return nil, fmt.Errorf("console of guest %q: %w", g.Spec.Name, err)
	}
	defer f.Close()
	var out []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := counterLine.FindSubmatch(sc.Bytes()); m != nil {
			n, err := strconv.Atoi(string(m[1]))
			if err == nil {
				out = append(out, n)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("console of guest %q: %w", g.Spec.Name, err)
	}
	return out, nil
}

// LastCounter returns the latest counter printed, 0 if none yet.
func (g *Guest) LastCounter() (int, error) {
	c, err := g.Counters()
	if err != nil || len(c) == 0 {
		return 0, err
	}
	return c[len(c)-1], nil
}

// WaitCounter waits until the guest has printed a counter of at least n.
func (g *Guest) WaitCounter(ctx context.Context, n int) error {
	return poll(ctx, 100*time.Millisecond, fmt.Sprintf("counter %d of guest %q", n, g.Spec.Name), func() (bool, error) {
		last, err := g.LastCounter()
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil // QEMU creates the file when it starts
		}
		return last >= n, err
	})
}
