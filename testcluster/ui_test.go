package testcluster

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/fsm"
)

// chromium finds Debian's headless-capable Chromium; the browser test
// cannot run without it and says how to get it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium found: install Debian's with `apt-get install --no-install-recommends chromium fonts-dejavu-core` (make deps does)")
	return ""
}

// artifacts is where screenshots go: $HM_ARTIFACTS/<test> when set (CI
// keeps it), else the test's artifact directory (kept with go test
// -artifacts).
func artifacts(t *testing.T) string {
	dir := t.ArtifactDir()
	if base := os.Getenv("HM_ARTIFACTS"); base != "" {
		dir = filepath.Join(base, t.Name())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// browser drives one headless Chromium tab and collects the page's
// console errors and uncaught exceptions, which fail the test.
type browser struct {
	t    *testing.T
	ctx  context.Context
	dir  string
	mu   sync.Mutex
	errs []string
}

// newBrowser starts headless Chromium. It trusts exactly the public keys
// given (the hosts whose HTTPS it will open; Chromium cannot be handed the
// test mesh's CA), and no other certificate.
func newBrowser(t *testing.T, trust ...*x509.Certificate) *browser {
	var pins []string
	for _, c := range trust {
		sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
		pins = append(pins, base64.StdEncoding.EncodeToString(sum[:]))
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(pins, ",")),
		chromedp.NoSandbox, // CI runs as root
		chromedp.WindowSize(1360, 1000),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, dir: artifacts(t)}
	// The first run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromium(t), err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			// A refusal is an answer the page shows, not a fault of the page.
			expected := strings.Contains(m.Text, "status of 409")
			if (m.Type == chromedp.ConsoleError || m.IsException()) && !expected {
				b.mu.Lock()
				b.errs = append(b.errs, fmt.Sprintf("%s:%d %s", m.URL, m.Line+1, m.String()))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// step bounds one browser step, so a page that never shows what the test
// waits for fails the test instead of hanging it.
func (b *browser) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, 60*time.Second)
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// eval runs JavaScript in the page and returns its value.
func eval[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("browser: evaluate %s: %v", js, err)
	}
	return v
}

func (b *browser) shot(name string) {
	ctx, cancel := b.step()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(b.dir, name+".png"), png, 0o644); err != nil {
		b.t.Errorf("save screenshot %s: %v", name, err)
	}
}

// jsErrors returns the page's console errors and exceptions so far.
// takeErrors returns the errors so far and forgets them.
func (b *browser) takeErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	errs := b.errs
	b.errs = nil
	return errs
}

func (b *browser) jsErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

// TestWebDashboardInChromium drives the dashboard in a real browser on a
// 3-host sim mesh: it lists the hosts and VMs; a migration started from
// the page moves the VM while its progress bar advances; a refused
// migration shows the failed check's message. Screenshots are kept.
func TestWebDashboardInChromium(t *testing.T) {
	start := time.Now()
	// 2 GiB guests at 52 MiB/s take ~40 s of simulated time, 5 s at
	// TimeScale 8: long enough to watch the bar move. h3 has room for its
	// own two guests and 512 MiB more, so a guest sent there is refused.
	c := New(t, Options{Hosts: 3, VMsPerHost: 2, VMMemMiB: 2048, TimeScale: 8, HostMem: func(i int) uint64 {
		if i == 2 {
			return 2*2048 + 512
		}
		return 16384
	}})
	c.Leader(10 * time.Second)
	c.waitVMs(6)
	// Any host serves it; h2 is a follower or the leader. The browser trusts
	// h2's key alone, and the client's URL has the scheme the mesh speaks.
	b := newBrowser(t, c.cfgs[1].TLS.Certificate().Leaf)
	url := c.Client(c.Node(1).APIAddr()).URL() + "/ui/"
	// Without a token the page is refused and says so; with an operator's
	// token (made as `meshctl acl token create` does) it works, and the
	// migration it starts records that token as its actor.
	op, err := c.Client(c.Node(1).APIAddr()).ACLTokenCreate(context.Background(), api.ACLTokenRequest{Name: "ui-operator", Policy: "operator"})
	if err != nil {
		t.Fatal(err)
	}
	b.do("open the dashboard without a token",
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(`#summary`)),
	)
	c.WaitFor(10*time.Second, "the page to say it was refused", func() bool {
		return strings.Contains(eval[string](b, `document.querySelector("#summary").textContent`), "access refused")
	})
	b.do("enter the operator's token",
		chromedp.SetValue(chromedp.CSS(`#token`), op.SecretID),
		chromedp.Click(chromedp.CSS(`#token-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#hosts-table tbody tr[data-host="h3"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#events li[data-kind="leader.elected"]`)),
	)
	// The refused calls before the token are the console's only errors
	// so far; from now on there must be none.
	for _, e := range b.takeErrors() {
		if !strings.Contains(e, "401 (Unauthorized)") {
			t.Errorf("JavaScript error before the token was entered: %s", e)
		}
	}
	b.do("the dashboard with the token",
		chromedp.WaitVisible(chromedp.CSS(`#vms-table tbody tr[data-vm="vm-h3-1"]`)),
	)

	// Hosts and VMs as the state has them.
	hosts := eval[int](b, `document.querySelectorAll("#hosts-table tbody tr[data-host]").length`)
	vms := eval[int](b, `document.querySelectorAll("#vms-table tbody tr[data-vm]").length`)
	if hosts != 3 || vms != 6 {
		t.Fatalf("the page lists %d hosts and %d VMs, want 3 and 6", hosts, vms)
	}
	where := eval[string](b, `document.querySelector('#vms-table tr[data-vm="vm-h1-0"] .vm-host').textContent`)
	if where != "h1" {
		t.Fatalf("vm-h1-0 shown on %q, want h1", where)
	}
	b.shot("01-overview")
	// A mark in the page's memory: a reload would erase it.
	eval[bool](b, `window.hmNoReload = true`)
	b.do("the event log shows the mesh forming",
		chromedp.WaitVisible(chromedp.CSS(`#events li[data-kind="leader.elected"]`)),
	)

	// Migrate vm-h1-0 from the page: the dry run's table first, then confirm.
	b.do("open the migrate dialog",
		chromedp.Click(chromedp.CSS(`#vms-table tr[data-vm="vm-h1-0"] button[data-action="migrate"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#mig-checks tr.pick[data-host="h3"]`)),
	)
	h3Checks := eval[string](b, `document.querySelector('#mig-checks tr.pick[data-host="h3"]').textContent`)
	if !strings.Contains(h3Checks, "memory") {
		t.Errorf("the dry run shows h3 as %q, want its memory check failing", h3Checks)
	}
	b.shot("02-dry-run")
	b.do("confirm the migration",
		chromedp.Click(chromedp.CSS(`#mig-confirm`)),
		chromedp.WaitVisible(chromedp.CSS(`#running .mig[data-migration]`)),
	)
	// The progress bar advances: at least two different values below 100.
	seen := map[string]bool{}
	c.WaitFor(60*time.Second, "two progress values in the page", func() bool {
		pct := eval[string](b, `(document.querySelector("#running .mig[data-percent]") || {dataset: {}}).dataset.percent || ""`)
		if v, err := strconv.ParseFloat(pct, 64); err == nil && v > 0 && v < 100 {
			seen[pct] = true
		}
		return len(seen) >= 2
	})
	b.shot("03-migration-progress")
	mig := eval[string](b, `document.querySelector("#running .mig").dataset.migration`)
	m := c.waitFinal(mig, 60*time.Second)
	if m.State != fsm.MigSucceeded || m.VM != "vm-h1-0" || m.Dest != "h2" {
		t.Fatalf("migration %s from the page: %s of %s to %s (%s), want vm-h1-0 Succeeded to h2", mig, m.State, m.VM, m.Dest, m.Reason)
	}
	if m.RequestedBy != "token:ui-operator" {
		t.Errorf("migration %s from the page has actor %q, want token:ui-operator", mig, m.RequestedBy)
	}
	if hosts := c.VMPlacement()["vm-h1-0"]; len(hosts) != 1 || hosts[0] != "h2" {
		t.Fatalf("vm-h1-0 runs on %v, want h2 alone", hosts)
	}
	b.do("the page shows the VM on h2, the result and its events",
		chromedp.WaitVisible(chromedp.CSS(`#vms-table tr[data-vm="vm-h1-0"][data-host="h2"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#recent-table tr[data-migration="`+mig+`"][data-state="Succeeded"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#events li[data-kind="migration.queued"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#events li[data-kind="migration.succeeded"]`)),
	)
	if ev := eval[string](b, `document.querySelector('#events li[data-kind="migration.succeeded"]').textContent`); !strings.Contains(ev, "vm-h1-0") {
		t.Errorf("the migration's success event reads %q", ev)
	}
	t.Logf("progress values seen in the page: %v", keys(seen))

	// A refused migration: vm-h1-1 to h3, which lacks the memory. The page
	// shows the check's own message, as the API words it.
	var want string
	cands, err := c.Client(c.Node(0).APIAddr()).Migrate(context.Background(), api.MigrateRequest{VM: "vm-h1-1", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, cand := range cands.Candidates {
		for _, r := range cand.Results {
			if cand.Host == "h3" && r.Name == "memory" && !r.OK {
				want = r.Message
			}
		}
	}
	if want == "" {
		t.Fatalf("the API's dry run does not fail h3's memory check: %+v", cands.Candidates)
	}
	b.do("ask for vm-h1-1 to go to h3",
		chromedp.Click(chromedp.CSS(`#vms-table tr[data-vm="vm-h1-1"] button[data-action="migrate"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#mig-checks tr.pick[data-host="h3"]`)),
		chromedp.SetValue(chromedp.CSS(`#mig-dest`), "h3"),
		chromedp.Click(chromedp.CSS(`#mig-confirm`)),
		chromedp.WaitVisible(chromedp.CSS(`#mig-error li[data-check="memory"]`)),
	)
	shown := eval[string](b, `document.querySelector('#mig-error li[data-check="memory"]').textContent`)
	if shown != "memory: "+want {
		t.Errorf("the page shows %q, want %q", shown, "memory: "+want)
	}
	b.shot("04-refused")
	if hosts := c.VMPlacement()["vm-h1-1"]; len(hosts) != 1 || hosts[0] != "h1" {
		t.Fatalf("vm-h1-1 runs on %v after the refusal, want h1", hosts)
	}
	b.do("close the dialog",
		chromedp.Click(chromedp.CSS(`#mig-close`)),
		chromedp.WaitNotVisible(chromedp.CSS(`#migrate-dialog`)),
	)

	// A drain from the page with a VM that cannot move: the drain card
	// names its reason, and Activate brings the host back.
	h3, _ := c.Reg.Host("h3")
	if err := h3.SetState("vm-h3-1", fsm.VMShutoff); err != nil {
		t.Fatal(err)
	}
	b.do("the page shows vm-h3-1 shut off and h3's CPUs freed",
		chromedp.WaitVisible(chromedp.CSS(`#vms-table tr[data-vm="vm-h3-1"][data-state="shutoff"]`)),
	)
	c.WaitFor(10*time.Second, "h3's row to settle", func() bool {
		return strings.Contains(eval[string](b, `document.querySelector('#hosts-table tr[data-host="h3"]').textContent`), "1 / 32")
	})
	b.do("drain h3 from the page (two clicks: arm, confirm)",
		chromedp.Click(chromedp.CSS(`#hosts-table tr[data-host="h3"] button[data-action="drain"]`)),
		chromedp.Click(chromedp.CSS(`#hosts-table tr[data-host="h3"] button[data-action="drain"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#drains .drain[data-drain="h3"][data-state="stuck"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#hosts-table tr[data-host="h3"][data-state="PreparingForMaintenance"]`)),
	)
	if d, _ := c.drainState("h3"); d.State != fsm.DrainStuck || d.Unmovable["vm-h3-1"] == "" || d.Moved["vm-h3-0"] == "" {
		t.Fatalf("drain of h3: %s, unmovable %v, moved %v", d.State, d.Unmovable, d.Moved)
	}
	why := eval[string](b, `document.querySelector('#drains .drain[data-drain="h3"] li[data-vm="vm-h3-1"]').textContent`)
	if !strings.Contains(why, "not running (shutoff)") {
		t.Errorf("the drain card says %q for vm-h3-1, want its reason", why)
	}
	b.do("the moved VM is listed as moved",
		chromedp.WaitVisible(chromedp.CSS(`#drains .drain[data-drain="h3"] li[data-vm="vm-h3-0"]`)),
	)
	b.do("the drain's events, the unmovable VM's included",
		chromedp.WaitVisible(chromedp.CSS(`#events li[data-kind="drain.started"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#events li[data-kind="drain.stuck"]`)),
	)
	b.shot("05-drain-stuck")
	b.do("activate h3 from the page",
		chromedp.Click(chromedp.CSS(`#hosts-table tr[data-host="h3"] button[data-action="activate"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#hosts-table tr[data-host="h3"][data-state="Up"]`)),
	)
	if _, st := c.drainState("h3"); st != fsm.HostUp {
		t.Fatalf("h3 is %s after Activate from the page", st)
	}
	c.assertOneHostPerVM(t)

	// A split brain: vm-h2-0's UUID also starts on h1. The page raises the
	// alarm above everything and will not offer to move that VM.
	var orig fsm.VM
	c.Leader(10 * time.Second).FSM().Read(func(s *fsm.State) {
		for _, v := range s.VMs {
			if v.Name == "vm-h2-0" {
				orig = *v
			}
		}
	})
	twin := simVM("vm-h2-0-twin", 256)
	twin.UUID = orig.UUID
	h1, _ := c.Reg.Host("h1")
	if err := h1.Define(twin); err != nil {
		t.Fatal(err)
	}
	b.do("the split-brain alarm shows",
		chromedp.WaitVisible(chromedp.CSS(`#alarms li[data-alarm="split-brain"]`)),
	)
	alarm := eval[string](b, `document.querySelector('#alarms li[data-alarm="split-brain"]').textContent`)
	if !strings.Contains(alarm, "vm-h2-0") || !strings.Contains(alarm, "h1") || !strings.Contains(alarm, "h2") {
		t.Errorf("the alarm reads %q, want the VM and both hosts", alarm)
	}
	if !eval[bool](b, `document.querySelector('#vms-table tr[data-vm="vm-h2-0"] button[data-action="migrate"]').disabled`) {
		t.Error("the page offers to migrate a VM under a split-brain alarm")
	}
	b.shot("06-split-brain-alarm")
	if err := h1.Remove(twin.Name); err != nil {
		t.Fatal(err)
	}
	b.do("the alarm clears once one copy stops",
		chromedp.WaitNotVisible(chromedp.CSS(`#alarms`)),
	)

	b.do("the alarm's events",
		chromedp.WaitVisible(chromedp.CSS(`#events li[data-kind="alarm.raised"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#events li[data-kind="alarm.cleared"]`)),
	)
	if !eval[bool](b, `window.hmNoReload === true`) {
		t.Error("the page reloaded: every update must come without one")
	}

	if errs := b.jsErrors(); len(errs) > 0 {
		t.Fatalf("JavaScript errors in the page:\n%s", strings.Join(errs, "\n"))
	}
	t.Logf("browser test took %s", time.Since(start).Round(time.Millisecond))
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
