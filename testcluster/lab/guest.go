package lab

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Disk placements of GuestSpec.Disk.
const (
	DiskNone   = ""
	DiskShared = "shared" // on Lab.SharedDir: every host sees it
	DiskLocal  = "local"  // on Host.LocalDir: copied live on migration
)

// MinGuestMemoryMiB is the least memory a lab guest boots with: the kernel
// plus the unpacked initramfs (busybox, modules, guestagent) take most of
// 64 MiB.
const MinGuestMemoryMiB = 96

// GuestSpec describes a lab guest. Zero values get defaults: 256 MiB, 1 vCPU,
// cache "none", 64 MiB disk.
type GuestSpec struct {
	Name      string
	MemoryMiB int
	VCPUs     int
	// IP is the guest's address on the VM network (VMPrefix + n, n >= 50).
	IP string
	// DirtyMiBps is the rate at which the workload dirties memory pages.
	DirtyMiBps int
	// FillMiB is how much memory the workload fills with non-zero data at
	// boot, so that a migration has that much real data to send. The agent
	// caps it to what the guest has free (leaving 24 MiB) and says so on the
	// console.
	FillMiB int
	// FillMarker, if set, is what the fill writes, repeated: a capture of a
	// cleartext migration stream finds it, one of an encrypted stream must
	// not. Printable ASCII without spaces, 8 to 64 bytes (it travels on the
	// kernel command line).
	FillMarker  string
	Disk        string // DiskNone, DiskShared or DiskLocal
	DiskCache   string
	DiskSizeMiB int
	// CPUModel pins the guest CPU model (<cpu mode='custom'>, as oVirt pins
	// a cluster CPU type). Empty leaves libvirt's default (qemu64).
	CPUModel string
	// CPUFeatures are features the guest CPU requires on top of CPUModel
	// (<feature policy='require'>): a guest that needs what another host
	// lacks (Config.TCGWithout).
	CPUFeatures []string
	// Bridge is the host bridge the NIC joins; empty is VMBridge. Another
	// bridge makes a guest whose network only its host offers.
	Bridge string
}

// Guest is a defined and running lab guest.
type Guest struct {
	Spec GuestSpec
	// ConsoleLog is the serial console file, on shared storage: the same path
	// in every host and in the root namespace, appended to across migrations.
	ConsoleLog string
	// DiskPath is the guest's disk image as seen inside the hosts ("" for none).
	DiskPath string
	// Host is where the guest was started; migrations do not update it.
	Host *Host
	// XML is the domain definition it was started with.
	XML string

	// lab is the lab whose hosts States asks (nil: Host alone).
	lab *Lab
}

var (
	guestName  = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$`)
	fillMarker = regexp.MustCompile(`^[!-~]{8,64}$`)
)

func (s GuestSpec) withDefaults() (GuestSpec, error) {
	if !guestName.MatchString(s.Name) {
		return s, fmt.Errorf("guest name %q: want letters, digits, - and _", s.Name)
	}
	if s.MemoryMiB == 0 {
		s.MemoryMiB = 256
	}
	if s.MemoryMiB < MinGuestMemoryMiB {
		return s, fmt.Errorf("guest %q: %d MiB: the kernel and initramfs need at least %d MiB", s.Name, s.MemoryMiB, MinGuestMemoryMiB)
	}
	if s.VCPUs == 0 {
		s.VCPUs = 1
	}
	if s.DiskCache == "" {
		s.DiskCache = "none"
	}
	if s.DiskSizeMiB == 0 {
		s.DiskSizeMiB = 64
	}
	if s.FillMiB >= s.MemoryMiB-64 && s.FillMiB > 0 {
		return s, fmt.Errorf("guest %q: fill %d MiB leaves too little of %d MiB for the kernel", s.Name, s.FillMiB, s.MemoryMiB)
	}
	if s.FillMarker != "" && !fillMarker.MatchString(s.FillMarker) {
		return s, fmt.Errorf("guest %q: fill marker %q: want 8 to 64 printable ASCII bytes without spaces", s.Name, s.FillMarker)
	}
	switch s.Disk {
	case DiskNone, DiskShared, DiskLocal:
	default:
		return s, fmt.Errorf("guest %q: disk %q: want %q, %q or %q", s.Name, s.Disk, DiskNone, DiskShared, DiskLocal)
	}
	return s, nil
}

// DefineGuest defines a persistent guest on h, starts it and waits until its
// workload prints its first counter on the console.
func (l *Lab) DefineGuest(ctx context.Context, h *Host, spec GuestSpec) (*Guest, error) {
	spec, err := spec.withDefaults()
	if err != nil {
		return nil, err
	}
	kernel, initrd, err := l.GuestImage(ctx)
	if err != nil {
		return nil, fmt.Errorf("define guest %q on %s: %w", spec.Name, h.Name, err)
	}
	g := &Guest{Spec: spec, Host: h, ConsoleLog: filepath.Join(l.SharedDir, "console", spec.Name+".log"), lab: l}
	if err := os.MkdirAll(filepath.Dir(g.ConsoleLog), 0o755); err != nil {
		return nil, err
	}
	if err := os.Remove(g.ConsoleLog); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	switch spec.Disk {
	case DiskShared:
		g.DiskPath = filepath.Join(l.SharedDir, "disks", spec.Name+".qcow2")
	case DiskLocal:
		g.DiskPath = filepath.Join(h.LocalDir, spec.Name+".qcow2")
	}
	if g.DiskPath != "" {
		if err := g.CreateDiskOn(ctx, h); err != nil {
			return nil, fmt.Errorf("define guest %q on %s: %w", spec.Name, h.Name, err)
		}
	}
	g.XML, err = domainXML(spec, kernel, initrd, g.ConsoleLog, g.DiskPath)
	if err != nil {
		return nil, err
	}
	xmlPath := filepath.Join(h.StateDir, spec.Name+".xml")
	if err := os.WriteFile(xmlPath, []byte(g.XML), 0o644); err != nil {
		return nil, err
	}
	if _, err := h.Virsh(ctx, "define", xmlPath); err != nil {
		return nil, fmt.Errorf("define guest %q on %s: %w", spec.Name, h.Name, err)
	}
	if _, err := h.Virsh(ctx, "start", spec.Name); err != nil {
		return nil, fmt.Errorf("start guest %q on %s (qemu log: %s): %w", spec.Name, h.Name,
			filepath.Join(h.StateDir, "log", "qemu", spec.Name+".log"), err)
	}
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := g.WaitCounter(wctx, 1); err != nil {
		return nil, fmt.Errorf("guest %q on %s did not boot (console %s): %w", spec.Name, h.Name, g.ConsoleLog, err)
	}
	return g, nil
}

// CreateDiskOn creates the guest's disk image on h (an empty qcow2 of the
// spec's size). For a local disk, call it on the destination before a
// migration with copy-storage: libvirt wants the image pre-created there.
func (g *Guest) CreateDiskOn(ctx context.Context, h *Host) error {
	if g.DiskPath == "" {
		return fmt.Errorf("guest %q has no disk", g.Spec.Name)
	}
	if _, err := h.Run(ctx, "mkdir", "-p", filepath.Dir(g.DiskPath)); err != nil {
		return err
	}
	if _, err := h.Run(ctx, "qemu-img", "create", "-q", "-f", "qcow2", g.DiskPath,
		strconv.Itoa(g.Spec.DiskSizeMiB)+"M"); err != nil {
		return fmt.Errorf("create disk of guest %q on %s: %w", g.Spec.Name, h.Name, err)
	}
	return nil
}

// HTTP sends a GET for path to the guest's workload over the VM network,
// from the root namespace, and returns the body.
func (g *Guest) HTTP(ctx context.Context, path string) (string, error) {
	if g.Spec.IP == "" {
		return "", fmt.Errorf("guest %q has no IP", g.Spec.Name)
	}
	u := "http://" + g.Spec.IP + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("guest %q: %w", g.Spec.Name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("guest %q: GET %s: %w", g.Spec.Name, u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("guest %q: GET %s: %s: %s", g.Spec.Name, u, resp.Status, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

// WriteDisk stores data as a marker on the guest's disk (through the guest).
func (g *Guest) WriteDisk(ctx context.Context, data string) error {
	_, err := g.HTTP(ctx, "/disk/write?data="+url.QueryEscape(data))
	return err
}

// ReadDisk returns the marker on the guest's disk, read from the disk itself.
func (g *Guest) ReadDisk(ctx context.Context) (string, error) {
	return g.HTTP(ctx, "/disk/read")
}
