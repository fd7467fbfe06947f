package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// installInto installs the package with dpkg -i, as an operator does, into
// a throwaway root (dpkg --root: its own package database; the maintainer
// script runs chrootless with DPKG_ROOT set and leaves this machine's
// systemd alone), and checks what an operator finds: the files where the
// package says, dpkg's record of them, both binaries running, and
// `meshd validate-config` passing on the installed example with a site
// file in meshd.d pointing at the host's key and certificates.
func installInto(t *testing.T, deb string) {
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// libc6 is not in the empty root's database: --force-depends.
	run(t, root, "dpkg", "--root="+root, "--force-script-chrootless", "--force-depends", "--log=/dev/null", "-i", deb)
	if got := run(t, root, "dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W", "-f=${Status}", "hostmesh"); got != "install ok installed" {
		t.Fatalf("dpkg-query: %q, want install ok installed", got)
	}
	listed := run(t, root, "dpkg", "--root="+root, "-L", "hostmesh")
	for _, f := range []string{"/usr/bin/meshd", "/usr/bin/meshctl", "/lib/systemd/system/meshd.service", "/etc/hostmesh/meshd.hcl",
		"/etc/hostmesh/meshd.d", "/var/lib/hostmesh", "/usr/share/bash-completion/completions/meshctl",
		"/usr/share/man/man8/meshd.8.gz", "/usr/share/man/man1/meshctl.1.gz"} {
		if !strings.Contains(listed, f+"\n") {
			t.Errorf("dpkg -L hostmesh lacks %s", f)
		}
		if _, err := os.Lstat(filepath.Join(root, f)); err != nil {
			t.Errorf("installed root lacks %s: %v", f, err)
		}
	}
	for _, c := range []struct{ path, mode string }{{"etc/hostmesh/meshd.hcl", "-rw-r-----"}, {"var/lib/hostmesh", "drwxr-x---"}} {
		if st, err := os.Stat(filepath.Join(root, c.path)); err != nil || st.Mode().String() != c.mode {
			t.Errorf("/%s mode %v (%v), want %s", c.path, st.Mode(), err, c.mode)
		}
	}
	meshd, meshctl := filepath.Join(root, "usr/bin/meshd"), filepath.Join(root, "usr/bin/meshctl")
	for _, bin := range []string{meshd, meshctl} {
		if got := run(t, root, bin, "--version"); !strings.Contains(got, "version ") {
			t.Errorf("%s --version: %q", bin, got)
		}
	}

	// The host's secrets and certificates, made with meshctl as the README
	// says, and a site file in meshd.d naming them.
	tls := filepath.Join(root, "etc/hostmesh/tls")
	if err := os.MkdirAll(tls, 0o700); err != nil {
		t.Fatal(err)
	}
	run(t, tls, meshctl, "tls", "ca", "create")
	run(t, tls, meshctl, "tls", "cert", "create", "--host", "h1", "--ip", "127.0.0.1")
	key := filepath.Join(root, "etc/hostmesh/gossip.key")
	if err := os.WriteFile(key, []byte(run(t, root, meshctl, "keygen")), 0o600); err != nil {
		t.Fatal(err)
	}
	site := "name = \"h1\"\n" +
		"gossip_key_file = \"" + key + "\"\n" +
		"ca_file = \"" + filepath.Join(tls, "hostmesh-ca.pem") + "\"\n" +
		"cert_file = \"" + filepath.Join(tls, "h1.pem") + "\"\n" +
		"key_file = \"" + filepath.Join(tls, "h1-key.pem") + "\"\n"
	siteFile := filepath.Join(root, "etc/hostmesh/meshd.d/10-site.hcl")
	if err := os.WriteFile(siteFile, []byte(site), 0o640); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(meshd, "validate-config", filepath.Join(root, "etc/hostmesh/meshd.hcl"), filepath.Join(root, "etc/hostmesh/meshd.d"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("meshd validate-config of the installed configuration: %v\n%s", err, b)
	}
	// A typo in the site file is refused, naming the file.
	if err := os.WriteFile(siteFile, []byte(site+"netwrok = [\"prod\"]\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(meshd, "validate-config", filepath.Join(root, "etc/hostmesh/meshd.hcl"), filepath.Join(root, "etc/hostmesh/meshd.d"))
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "10-site.hcl") {
		t.Errorf("validate-config with an unknown setting: %v %s, want a failure naming 10-site.hcl", err, b)
	}
}
