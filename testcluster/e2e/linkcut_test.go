package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/testcluster"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// TestMigrationLinkCutDuringPostCopy (issue 10): the destination's
// migration link is cut at the switch during the post-copy (its port down:
// the stream stalls, nothing resets it) for about 12 s. The guest runs on
// the destination and waits for pages that cannot come. The source's
// meshd sees the stream stall and says so: the migration stays Running on
// its first attempt with the reason (never failed, never retried
// elsewhere: the guest's memory is split between the hosts), and it does
// NOT break the post-copy off: the TCP stream survives the cut and
// carries on when the link comes back. (Breaking it off made the resume
// depend on QEMU 7.2's in-band migrate-recover, which deadlocked 2 lab
// runs in 3: the destination's vCPU waited for a page holding QEMU's big
// lock, which the monitor needs; see README "Post-copy link cut".) The
// migration Succeeds on its first attempt with no resume, and the guest
// runs on the destination only, its counter going on from where it stood.
func TestMigrationLinkCutDuringPostCopy(t *testing.T) {
	m := sharedMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	src, dst := m.lab.Hosts[0], m.lab.Hosts[1] // meshctl talks to h1, the source
	m.retryOnTCG(t, "pccut", func(vm string) error {
		return m.cutDuringPostCopy(t, ctx, src, dst, vm)
	})
}

// cutDuringPostCopy runs TestMigrationLinkCutDuringPostCopy's scenario on
// a fresh guest vm.
func (m *mesh) cutDuringPostCopy(t *testing.T, ctx context.Context, src, dst *lab.Host, vm string) error {
	t.Helper()
	logFrom := fileSize(m.meshdLog(src))
	r := m.toPostCopy(t, ctx, src, dst, vm)
	if err := dst.CutMigrationLink(ctx); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	restored := false
	restore := func() {
		if restored {
			return
		}
		restored = true
		if err := dst.RestoreMigrationLink(context.Background()); err != nil {
			t.Errorf("%v", err)
		}
	}
	defer restore()
	t.Logf("migration link of %s cut %s into the post-copy", dst.Name, cut.Sub(r.switched).Round(time.Millisecond))

	// meshd says the post-copy stalls, within about 10 s, and keeps it:
	// Running on attempt 1, the source's copy not broken off
	var cur api.Migration
	if err := testcluster.Poll(45*time.Second, 250*time.Millisecond, func() bool {
		cur = m.migration(t, ctx, r.id)
		return cur.State.Final() || strings.Contains(cur.Unsettled, "post-copy stalled")
	}); err != nil || cur.State != api.MigRunning || cur.Attempt != 1 {
		t.Fatalf("%s while the link is down: %s on attempt %d (%s, unsettled %q), want Running on attempt 1 saying the post-copy stalls (%v; virsh: %q on %s, %q on %s)",
			r.id, cur.State, cur.Attempt, cur.Reason, cur.Unsettled, err, domState(ctx, src, vm), src.Name, domState(ctx, dst, vm), dst.Name)
	}
	noted := time.Now()
	srcState, dstState := domState(ctx, src, vm), domState(ctx, dst, vm)
	t.Logf("%s %s after the cut: %s, %q (virsh: %q on %s, %q on %s)", r.id, noted.Sub(cut).Round(time.Millisecond),
		cur.State, cur.Unsettled, srcState, src.Name, dstState, dst.Name)
	// The link stays down until 12 s after the cut; all that time the
	// stalled post-copy must not be broken off on either host.
	upAt := cut.Add(12 * time.Second)
	_ = testcluster.Poll(time.Until(upAt)+5*time.Second, 500*time.Millisecond, func() bool {
		if strings.Contains(srcState, "failed") || strings.Contains(dstState, "failed") {
			return true
		}
		srcState, dstState = domState(ctx, src, vm), domState(ctx, dst, vm)
		return !time.Now().Before(upAt)
	})
	if strings.Contains(srcState, "failed") || strings.Contains(dstState, "failed") {
		t.Errorf("the stalled post-copy was broken off while the link was down: %q on %s, %q on %s", srcState, src.Name, dstState, dst.Name)
	}

	restore()
	back := time.Now()
	t.Logf("migration link of %s restored %s after the cut", dst.Name, back.Sub(cut).Round(time.Millisecond))
	// TCP retransmits on the stream (with backoff): it carries on and the
	// migration completes
	dumped := false
	if err := testcluster.Poll(150*time.Second, 100*time.Millisecond, func() bool {
		cur = m.migration(t, ctx, r.id)
		if !cur.State.Final() && !dumped && time.Since(back) > 60*time.Second {
			// where the QEMUs wait, while they wait
			dumped = true
			t.Logf("%s not ended 60 s after the restore (%s; virsh: %q on %s, %q on %s): the QEMUs' threads now",
				r.id, cur.Unsettled, domState(ctx, src, vm), src.Name, domState(ctx, dst, vm), dst.Name)
			logQemuThreads(t, ctx, dst, vm)
			logQemuThreads(t, ctx, src, vm)
		}
		return cur.State.Final()
	}); err != nil {
		logQemuThreads(t, ctx, dst, vm)
		logQemuThreads(t, ctx, src, vm)
		t.Fatalf("%s did not end after the link came back: %v (last %s: %s; virsh: %q on %s, %q on %s)", r.id, err, cur.State, cur.Unsettled,
			domState(ctx, src, vm), src.Name, domState(ctx, dst, vm), dst.Name)
	}
	ended := time.Now()
	logProgress(t, cur)
	t.Logf("%s %s %s after the restore (downtime %d ms, actions %v)", r.id, cur.State, ended.Sub(back).Round(time.Millisecond),
		cur.DowntimeMs, cur.Progress.Actions)
	if slices.Contains(cur.Progress.Actions, "post-copy interrupted") {
		t.Errorf("%s: actions %v, the stalled post-copy was broken off", r.id, cur.Progress.Actions)
	}
	b, err := os.ReadFile(m.meshdLog(src))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b[min(logFrom, int64(len(b))):]), "post-copy resumed"); n != 0 {
		t.Errorf("meshd on %s resumed the post-copy %d times, want none: the stream carries on", src.Name, n)
	}
	if err := m.assertEndState(t, ctx, r, cur, dst); err != nil {
		return err
	}
	// the guest stood while it waited for its pages: how long, and that
	// it counted on from where it stood (assertEndState: no restart)
	if gs := r.w.gapsOver(r.switched, time.Now(), 2*time.Second); len(gs) > 0 {
		longest := gs[0]
		for _, g := range gs[1:] {
			if g.d > longest.d {
				longest = g
			}
		}
		t.Logf("FIGURES link cut %s, restore→Succeeded %s, downtime %d ms, guest stood %s after counter %d",
			back.Sub(cut).Round(time.Millisecond), ended.Sub(back).Round(time.Millisecond), cur.DowntimeMs,
			longest.d.Round(time.Millisecond), longest.after)
	} else {
		t.Logf("FIGURES link cut %s, restore→Succeeded %s, downtime %d ms, guest never stood over 2 s",
			back.Sub(cut).Round(time.Millisecond), ended.Sub(back).Round(time.Millisecond), cur.DowntimeMs)
	}
	return nil
}

// fileSize is the size of the file at path, 0 if it cannot be read.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logQemuThreads logs where each thread of vm's QEMU on h waits in the
// kernel (wchan and the kernel stack): a thread in handle_userfault waits
// for a post-copy page, one in a futex for a lock (QEMU's big lock, say); a
// main thread in ppoll answers its monitor. For a thread in futex(2) it
// reads the futex word and, as a glibc mutex keeps its owner's thread id 8
// bytes after it, that owner: which thread holds the lock the others wait
// for. With gdb installed (diagnosis only) it logs every thread's
// backtrace too (QEMU is linked -rdynamic: its global functions have names
// without debug symbols).
func logQemuThreads(t *testing.T, ctx context.Context, h *lab.Host, vm string) {
	pid, err := h.Run(ctx, "cat", "/run/libvirt/qemu/"+vm+".pid")
	if err != nil {
		t.Logf("QEMU of %s on %s: %v", vm, h.Name, err)
		return
	}
	pid = strings.TrimSpace(pid)
	tasks, err := os.ReadDir("/proc/" + pid + "/task")
	if err != nil {
		t.Logf("QEMU of %s on %s (pid %s): %v", vm, h.Name, pid, err)
		return
	}
	var lines []string
	for _, task := range tasks {
		dir := "/proc/" + pid + "/task/" + task.Name()
		comm, _ := os.ReadFile(dir + "/comm")
		wchan, _ := os.ReadFile(dir + "/wchan")
		line := fmt.Sprintf("%s %s wchan=%s", task.Name(), strings.TrimSpace(string(comm)), string(wchan))
		if sc, err := os.ReadFile(dir + "/syscall"); err == nil {
			f := strings.Fields(string(sc))
			line += " syscall=" + strings.Join(f[:min(len(f), 3)], " ")
			if len(f) > 1 && f[0] == "202" { // futex(uaddr, ...)
				line += futexOwner(pid, f[1])
			}
		}
		if st, err := os.ReadFile(dir + "/stack"); err == nil {
			var fr []string
			for _, l := range strings.Split(strings.TrimSpace(string(st)), "\n") {
				if ff := strings.Fields(l); len(ff) > 1 {
					fr = append(fr, ff[1])
				}
			}
			line += " kstack=" + strings.Join(fr[:min(len(fr), 6)], "<")
		}
		lines = append(lines, line)
	}
	t.Logf("QEMU of %s on %s (pid %s) threads:\n%s", vm, h.Name, pid, strings.Join(lines, "\n"))
	if gdb, err := exec.LookPath("gdb"); err == nil {
		gctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(gctx, gdb, "-q", "-batch", "-p", pid, "-ex", "set pagination off",
			"-ex", "thread apply all bt 30").CombinedOutput()
		var keep []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "Thread ") || strings.HasPrefix(l, "#") {
				keep = append(keep, l)
			}
		}
		t.Logf("gdb backtraces of QEMU %s on %s (err %v):\n%s", pid, h.Name, err, strings.Join(keep, "\n"))
	}
}

// futexOwner reads, in process pid, the futex word at hex address addr
// and the int 8 bytes after it: a locked glibc mutex (word 1 or 2) keeps
// its owner's thread id there.
func futexOwner(pid, addr string) string {
	a, err := strconv.ParseUint(strings.TrimPrefix(addr, "0x"), 16, 64)
	if err != nil {
		return ""
	}
	f, err := os.Open("/proc/" + pid + "/mem")
	if err != nil {
		return ""
	}
	defer f.Close()
	b := make([]byte, 12)
	if _, err := f.ReadAt(b, int64(a)); err != nil {
		return ""
	}
	word, owner := binary.LittleEndian.Uint32(b[0:4]), int32(binary.LittleEndian.Uint32(b[8:12]))
	return fmt.Sprintf(" futex-word=%d if-mutex-owner=%d", word, owner)
}
