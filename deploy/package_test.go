package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackage builds the .deb as make package does and checks what it
// holds: the files, their owners and modes, the control fields, both
// binaries' --version, the example configuration parsing, the unit passing
// systemd-analyze verify, the completion loading in bash and the man pages.
func TestPackage(t *testing.T) {
	out := t.TempDir()
	deb := strings.TrimSpace(lastLine(run(t, "..", "make", "--no-print-directory", "package", "PKGDIR="+out)))
	st, err := os.Stat(deb)
	if err != nil {
		t.Fatalf("make package did not leave %s: %v", deb, err)
	}
	t.Logf("%s: %d KiB", filepath.Base(deb), st.Size()/1024)

	list := run(t, out, "dpkg-deb", "-c", deb)
	for _, want := range []string{
		"-rwxr-xr-x root/root .* ./usr/bin/meshd",
		"-rwxr-xr-x root/root .* ./usr/bin/meshctl",
		"-rw-r--r-- root/root .* ./lib/systemd/system/meshd.service",
		"-rw-r----- root/root .* ./etc/hostmesh/meshd.hcl",
		"drwxr-x--- root/root .* ./etc/hostmesh/meshd.d/",
		"drwxr-x--- root/root .* ./var/lib/hostmesh/",
		"./usr/share/bash-completion/completions/meshctl",
		"./usr/share/bash-completion/completions/meshd -> meshctl",
		"./usr/share/man/man8/meshd.8.gz",
		"./usr/share/man/man1/meshctl.1.gz",
	} {
		if !matchLine(list, want) {
			t.Errorf("package lacks %q:\n%s", want, list)
		}
	}
	if got := run(t, out, "dpkg-deb", "-f", deb, "Package"); strings.TrimSpace(got) != "hostmesh" {
		t.Errorf("Package: %q", got)
	}
	ctl := filepath.Join(out, "control")
	run(t, out, "dpkg-deb", "-e", deb, ctl)
	if b, _ := os.ReadFile(filepath.Join(ctl, "conffiles")); strings.TrimSpace(string(b)) != "/etc/hostmesh/meshd.hcl" {
		t.Errorf("conffiles %q, want /etc/hostmesh/meshd.hcl (dpkg keeps the operator's edits on upgrade)", b)
	}

	t.Run("dpkg -i", func(t *testing.T) { installInto(t, deb) })

	root := filepath.Join(out, "root")
	run(t, out, "dpkg-deb", "-x", deb, root)
	version := strings.TrimSpace(run(t, out, "dpkg-deb", "-f", deb, "Version"))
	for _, bin := range []string{"meshd", "meshctl"} {
		if got := run(t, out, filepath.Join(root, "usr/bin", bin), "--version"); !strings.Contains(got, version) || !strings.Contains(got, "commit ") {
			t.Errorf("%s --version %q, want the package version %s and the commit", bin, got, version)
		}
	}
	// The example names files the host does not have yet: validate-config
	// must parse every setting and stop at the first missing file.
	cmd := exec.Command(filepath.Join(root, "usr/bin/meshd"), "validate-config", filepath.Join(root, "etc/hostmesh/meshd.hcl"))
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "/etc/hostmesh/gossip.key") {
		t.Errorf("meshd validate-config on the packaged example: %v %s, want exit 2 naming the missing gossip key", err, b)
	}

	// systemd-analyze checks that the ExecStart binaries exist: point them
	// at the extracted ones, the rest of the unit unchanged.
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze not found (%v): install package systemd (make deps)", err)
	}
	unit, err := os.ReadFile(filepath.Join(root, "lib/systemd/system/meshd.service"))
	if err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(out, "meshd.service")
	if err := os.WriteFile(local, []byte(strings.ReplaceAll(string(unit), "/usr/bin/meshd", filepath.Join(root, "usr/bin/meshd"))), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(analyze, "verify", "--man=no", local).CombinedOutput(); err != nil || len(b) != 0 {
		t.Errorf("systemd-analyze verify meshd.service: %v\n%s", err, b)
	}
	for _, want := range []string{"Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "ProtectSystem=strict", "StateDirectory=hostmesh", "NoNewPrivileges=true",
		"After=network-online.target libvirtd.service virtqemud.service dbus.service remote-fs.target"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %s", want)
		}
	}

	// Completion: the script loads in bash and meshctl answers it.
	comp := filepath.Join(root, "usr/share/bash-completion/completions/meshctl")
	if got := run(t, out, "bash", "-c", "source "+comp+" && complete -p meshctl meshd"); !strings.Contains(got, "_hostmesh_complete meshctl") {
		t.Errorf("completion not registered: %q", got)
	}
	if got := run(t, out, filepath.Join(root, "usr/bin/meshctl"), "--generate-bash-completion"); !strings.Contains(got, "migrate") || !strings.Contains(got, "drain") {
		t.Errorf("meshctl --generate-bash-completion %q, want its commands", got)
	}
	for _, page := range []string{"usr/share/man/man8/meshd.8.gz", "usr/share/man/man1/meshctl.1.gz"} {
		text := run(t, out, "zcat", filepath.Join(root, page))
		if !strings.Contains(text, ".TH ") || !strings.Contains(text, "config-file") && strings.Contains(page, "meshd") {
			t.Errorf("%s is not a man page of the command line: %.200q", page, text)
		}
		// It renders, with every groff warning on and none given.
		groff, err := exec.LookPath("groff")
		if err != nil {
			t.Fatalf("groff not found (%v): install package groff-base (make deps)", err)
		}
		cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
		cmd.Stdin = strings.NewReader(text)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || stderr.Len() != 0 {
			t.Errorf("%s: groff -man -ww: %v\n%s", page, err, stderr.String())
		}
	}
	// meshd's page documents the shutdown policy (generated from its flags).
	if text := run(t, out, "zcat", filepath.Join(root, "usr/share/man/man8/meshd.8.gz")); !strings.Contains(text, "shutdown-policy") {
		t.Error("meshd(8) does not document --shutdown-policy")
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// matchLine reports whether a line of text holds the parts of pattern
// split at " .* ", in order.
func matchLine(text, pattern string) bool {
	parts := strings.Split(pattern, " .* ")
	for _, line := range strings.Split(text, "\n") {
		rest, ok := line, true
		for _, p := range parts {
			i := strings.Index(rest, p)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(p):]
		}
		if ok {
			return true
		}
	}
	return false
}
