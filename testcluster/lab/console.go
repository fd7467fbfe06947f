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
	"strings"
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

// ErrGuestDead is returned by WaitCounter when the console shows the guest
// cannot count any more (kernel panic, workload killed).
var ErrGuestDead = errors.New("guest workload died")

// deathMarks are console lines after which no counter will come.
var deathMarks = []string{"hm-init: hm-agent exited", "Kernel panic"}

// WaitCounter waits until the guest has printed a counter of at least n. It
// gives up at once with ErrGuestDead when the console shows the workload
// died, rather than waiting out ctx.
func (g *Guest) WaitCounter(ctx context.Context, n int) error {
	return poll(ctx, 100*time.Millisecond, fmt.Sprintf("counter %d of guest %q", n, g.Spec.Name), func() (bool, error) {
		last, err := g.LastCounter()
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil // QEMU creates the file when it starts
		}
		if err != nil || last >= n {
			return last >= n, err
		}
		if mark := g.deathMark(); mark != "" {
			return false, &pollAbort{fmt.Errorf("guest %q: console says %q: %w", g.Spec.Name, mark, ErrGuestDead)}
		}
		return false, nil
	})
}

// GuestCrashMark starts the failure message of a test whose guest's kernel
// panicked right after a live migration, or hung there (the console silent
// while libvirt runs the guest on one host with no job left: RunsSettled). QEMU 7.2's software emulation (TCG,
// the only accelerator the lab has; see lab.md) now and then breaks a guest
// that way, whatever moved it (plain virsh too: TestVirshLiveMigration).
// The CI test runner (scripts/testrun) reruns a test that failed with
// this mark once, loudly; a second failure stands.
const GuestCrashMark = "TCG GUEST CRASH"

// ConsoleKernelPanic returns the console file's "Kernel panic" line, or ""
// when the guest's kernel did not panic (or the file cannot be read).
func ConsoleKernelPanic(path string) string {
	if m := consoleDeathMark(path); strings.Contains(m, "Kernel panic") {
		return m
	}
	return ""
}

// deathMark returns the console line that shows the guest died, or "".
func (g *Guest) deathMark() string { return consoleDeathMark(g.ConsoleLog) }

// consoleDeathMark returns the first line of the console file at path that
// shows the guest died, or "".
func consoleDeathMark(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		for _, m := range deathMarks {
			if strings.Contains(line, m) {
				return strings.TrimSpace(line)
			}
		}
	}
	return ""
}
