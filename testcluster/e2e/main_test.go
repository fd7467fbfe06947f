package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Every test shares one lab and one mesh: bringing up three libvirtds and
// three meshds takes about 6 s here, while each test's own guests are cheap.
// Tests stay independent by defining their own guests and removing them
// when they end.
var (
	meshOnce  sync.Once
	theMesh   *mesh
	meshErr   error
	suiteFrom = time.Now()
)

func TestMain(m *testing.M) {
	code := m.Run()
	if theMesh != nil {
		if code != 0 {
			theMesh.keepLogs()
		}
		if err := theMesh.close(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
			code = 1
		}
		if code == 0 {
			_ = os.RemoveAll(theMesh.logDir)
		} else {
			fmt.Fprintf(os.Stderr, "e2e: meshd, libvirtd and QEMU logs kept in %s\n", theMesh.logDir)
		}
	}
	fmt.Fprintf(os.Stderr, "e2e: whole suite took %s\n", time.Since(suiteFrom).Round(time.Second))
	os.Exit(code)
}

// sharedMesh brings up the lab and the mesh on first use, or fails the test
// with the reason: a lab test that cannot run says why, it never skips.
func sharedMesh(t *testing.T) *mesh {
	t.Helper()
	meshOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		start := time.Now()
		theMesh, meshErr = startMesh(ctx)
		if meshErr == nil {
			fmt.Fprintf(os.Stderr, "e2e: lab and mesh of 3 hosts up in %s\n", time.Since(start).Round(time.Millisecond))
		}
	})
	if meshErr != nil {
		t.Fatalf("start lab and mesh (needs root, libvirtd, qemu; one lab per machine, run under flock /tmp/hostmesh-lab.lock): %v", meshErr)
	}
	return theMesh
}

// labDir is where the lab lives; HM_LAB_DIR overrides it (the lab's own
// tests honour it too), empty means the lab's default.
func labDir() string { return os.Getenv("HM_LAB_DIR") }

// buildBinaries builds meshd and meshctl into dir with the libvirt_dlopen
// tag, so meshd loads libvirt at run time inside the hosts.
func buildBinaries(ctx context.Context, dir string) (meshd, meshctl string, err error) {
	meshd, meshctl = filepath.Join(dir, "meshd"), filepath.Join(dir, "meshctl")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags=libvirt_dlopen", "-o", dir+"/",
		"github.com/hostmesh/hostmesh/cmd/meshd", "github.com/hostmesh/hostmesh/cmd/meshctl")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("build meshd and meshctl: %w: %s", err, out)
	}
	return meshd, meshctl, nil
}
