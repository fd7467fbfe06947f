package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v2"

	"github.com/hostmesh/hostmesh/gossip"
)

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// effective runs meshd's command line up to the configuration and returns
// the settings it ends with.
func effective(t *testing.T, args ...string) (cluster string, apiPort int, networks []string) {
	t.Helper()
	app := App(&strings.Builder{}, &strings.Builder{})
	app.Action = func(c *ucli.Context) error {
		if _, _, err := loadConfig(c); err != nil {
			return err
		}
		cluster, apiPort, networks = c.String("cluster"), c.Int("api-port"), c.StringSlice("network")
		return nil
	}
	if err := app.Run(append([]string{"meshd"}, args...)); err != nil {
		t.Fatalf("meshd %v: %v", args, err)
	}
	return
}

// TestConfigPrecedence: flag > environment > file > default, a later file
// over an earlier one, and a repeatable flag set by a list.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	f := writeFile(t, dir, "meshd.hcl", "# comment\ncluster = \"fromfile\"\napi_port = 7500\nnetwork = [\"prod\", \"prod.120\"]\n")
	if cl, port, nets := effective(t, "--config-file", f); cl != "fromfile" || port != 7500 || strings.Join(nets, ",") != "prod,prod.120" {
		t.Errorf("file only: cluster %q port %d networks %v, want fromfile 7500 [prod prod.120]", cl, port, nets)
	}
	t.Setenv("MESH_CLUSTER", "fromenv")
	if cl, port, _ := effective(t, "--config-file", f); cl != "fromenv" || port != 7500 {
		t.Errorf("env over file: cluster %q port %d, want fromenv 7500", cl, port)
	}
	if cl, _, nets := effective(t, "--config-file", f, "--cluster", "fromflag", "--network", "lab"); cl != "fromflag" || strings.Join(nets, ",") != "lab" {
		t.Errorf("flag over env and file: cluster %q networks %v, want fromflag [lab]", cl, nets)
	}
	os.Unsetenv("MESH_CLUSTER")
	if cl, port, _ := effective(t); cl != "default" || port != 7400 {
		t.Errorf("no file: cluster %q port %d, want the defaults", cl, port)
	}
	d := filepath.Join(dir, "meshd.d")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, d, "20-b.json", `{"cluster": "b"}`)
	writeFile(t, d, "10-a.hcl", "cluster = \"a\"\napi_port = 7600\n")
	writeFile(t, d, "README", "not read")
	if cl, port, _ := effective(t, "--config-file", f, "--config-dir", d); cl != "b" || port != 7600 {
		t.Errorf("config dir: cluster %q port %d, want b (20-b.json last) and 7600", cl, port)
	}
}

// TestConfigErrors: a bad file stops meshd with exit 2 and a message naming
// the file, the line and the key.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		what, text, say string
	}{
		{"unknown key", "cluster = \"a\"\n\nclustr = \"b\"\n", `bad.hcl:3: unknown setting "clustr"`},
		{"wrong type", "max_voters = \"many\"\n", `bad.hcl:1: max_voters = "many"`},
		{"list for one value", "\ncluster = [\"a\", \"b\"]\n", "bad.hcl:2: cluster: a list"},
		{"secret inline", "gossip_key = \"abc\"\n", "bad.hcl:1: \"gossip_key\" cannot be set"},
		{"block", "tls {\n ca_file = \"x\"\n}\n", "no blocks"},
		{"syntax", "cluster = \n", "bad.hcl:"},
	} {
		p := writeFile(t, dir, "bad.hcl", c.text)
		code, msg := runMeshdArgs(t, "--config-file", p)
		if code != exitUsage || !strings.Contains(msg, c.say) {
			t.Errorf("%s: exit %d %q, want 2 saying %q", c.what, code, msg, c.say)
		}
		var out, errOut strings.Builder
		if code := Main([]string{"meshd", "validate-config", p}, &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), c.say) {
			t.Errorf("validate-config, %s: exit %d %q, want 2 saying %q", c.what, code, errOut.String(), c.say)
		}
	}
}

// TestValidateConfigExample: the example installed as
// /etc/hostmesh/meshd.hcl is valid once the files it names exist, and
// validate-config says which of them is missing otherwise.
func TestValidateConfigExample(t *testing.T) {
	example := filepath.Join("..", "deploy", "hostmesh", "meshd.hcl")
	var out, errOut strings.Builder
	if code := Main([]string{"meshd", "validate-config", example}, &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), "/etc/hostmesh/gossip.key") {
		t.Errorf("example without its files: exit %d %q, want 2 naming the missing key file", code, errOut.String())
	}
	key := writeFile(t, t.TempDir(), "gossip.key", gossip.GenerateKey())
	args := append([]string{"meshd", "--config-file", example, "--name", "t1", "--gossip-key-file", key, "--data-dir", t.TempDir()},
		hostTLSFlags(t, "t1")...)
	out.Reset()
	errOut.Reset()
	if code := Main(append(args, "--check-config"), &out, &errOut); code != 0 || !strings.Contains(out.String(), "configuration valid") {
		t.Errorf("example with its files: exit %d, out %q err %q, want 0 and valid", code, out.String(), errOut.String())
	}
}
