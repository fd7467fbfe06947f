package gossip

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func newKey(t *testing.T) []byte {
	t.Helper()
	k, err := KeyFromString(GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestReadKeyFileRefusesOpenModes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gossip.key")
	if err := os.WriteFile(path, []byte(GenerateKey()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := ReadKeyFile(path)
	if err != nil || len(key) != 32 {
		t.Fatalf("ReadKeyFile of a 0600 file = %d bytes, %v", len(key), err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o602} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadKeyFile(path); !errors.Is(err, ErrKeyFileMode) {
			t.Errorf("ReadKeyFile of a %04o file = %v, want ErrKeyFileMode", mode, err)
		}
	}
	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("c2hvcnQ="), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKeyFile(bad); !errors.Is(err, ErrBadKey) {
		t.Errorf("ReadKeyFile of a 5-byte key = %v, want ErrBadKey", err)
	}
	if _, err := ReadKeyFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("ReadKeyFile of a missing file succeeded")
	}
	if _, err := ReadKeyFile(dir); err == nil {
		t.Error("ReadKeyFile of a directory succeeded")
	}
}

// persisted reads the keyring file as keys, checking its mode.
func persisted(t *testing.T, path string) [][]byte {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("keyring file mode %04o, want 0600", st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var enc []string
	if err := json.Unmarshal(b, &enc); err != nil {
		t.Fatalf("keyring file: %v\n%s", err, b)
	}
	var keys [][]byte
	for _, s := range enc {
		k, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return keys
}

// TestKeyringPersistedAndWinsOnRestart: every change is written to the
// keyring file before it takes effect; a restart with the old key on the
// command line starts with the persisted keyring.
func TestKeyringPersistedAndWinsOnRestart(t *testing.T) {
	k1, k2, k3 := newKey(t), newKey(t), newKey(t)
	file := filepath.Join(t.TempDir(), KeyringFileName)
	cfg := testConfig("a")
	cfg.Key, cfg.KeyringFile = k1, file
	a, err := Start(cfg, testFacts("a"))
	if err != nil {
		t.Fatal(err)
	}
	if got := persisted(t, file); !reflect.DeepEqual(got, [][]byte{k1}) {
		t.Fatalf("keyring file after start holds %d keys, want the configured one", len(got))
	}
	steps := []struct {
		op   func([]byte) error
		key  []byte
		want [][]byte
		err  error
	}{
		{a.InstallKey, k2, [][]byte{k1, k2}, nil},
		{a.InstallKey, k2, [][]byte{k1, k2}, nil}, // twice: no error, no change
		{a.UseKey, k3, [][]byte{k1, k2}, ErrKeyNotInstalled},
		{a.UseKey, k2, [][]byte{k2, k1}, nil},
		{a.RemoveKey, k2, [][]byte{k2, k1}, ErrPrimaryKey},
		{a.RemoveKey, k1, [][]byte{k2}, nil},
		{a.RemoveKey, k3, [][]byte{k2}, nil}, // not installed: nothing to do
		{a.InstallKey, []byte("short"), [][]byte{k2}, ErrBadKey},
	}
	for i, s := range steps {
		if err := s.op(s.key); !errors.Is(err, s.err) {
			t.Fatalf("step %d: %v, want %v", i, err, s.err)
		}
		if got := persisted(t, file); !reflect.DeepEqual(got, s.want) {
			t.Fatalf("step %d: keyring file holds %v, want %v", i, fps(got), fps(s.want))
		}
		kr, err := a.Keyring()
		if err != nil || !reflect.DeepEqual(kr, keyringStatus(s.want)) {
			t.Fatalf("step %d: Keyring() = %+v, %v; want %+v", i, kr, err, keyringStatus(s.want))
		}
		if got := a.keyring.GetKeys(); !reflect.DeepEqual(got, s.want) {
			t.Fatalf("step %d: memberlist's keyring holds %v, want %v", i, fps(got), fps(s.want))
		}
	}
	_ = a.Shutdown()

	b, err := Start(cfg, testFacts("a")) // still configured with k1
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown()
	if kr, _ := b.Keyring(); !reflect.DeepEqual(kr, keyringStatus([][]byte{k2})) {
		t.Fatalf("after restart the keyring is %+v, want the persisted one (k2 only)", kr)
	}

	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(cfg, testFacts("a")); !errors.Is(err, ErrKeyFileMode) {
		t.Fatalf("start with a world-readable keyring file = %v, want ErrKeyFileMode", err)
	}
}

func TestKeyringOffInDevMode(t *testing.T) {
	cfg := testConfig("dev")
	cfg.Key, cfg.DevMode = nil, true
	a := startAgent(t, cfg, testFacts("dev"))
	if _, err := a.Keyring(); !errors.Is(err, ErrNoEncryption) {
		t.Errorf("Keyring in dev mode = %v, want ErrNoEncryption", err)
	}
	if err := a.InstallKey(newKey(t)); !errors.Is(err, ErrNoEncryption) {
		t.Errorf("InstallKey in dev mode = %v, want ErrNoEncryption", err)
	}
}

func fps(keys [][]byte) []string { return keyringStatus(keys).Keys }

// TestRotationOnLiveAgents rotates three gossiping agents to a new key and
// removes the old one: gossip keeps converging, a host with only the old key
// is no longer admitted and one with the new key is.
func TestRotationOnLiveAgents(t *testing.T) {
	agents := startCluster(t, 3)
	waitFor(t, convergeTimeout, "convergence", func() bool { return converged(agents) })
	k2 := newKey(t)
	for _, step := range []func(*Agent) error{
		func(a *Agent) error { return a.InstallKey(k2) },
		func(a *Agent) error { return a.UseKey(k2) },
		func(a *Agent) error { return a.RemoveKey(testKey) },
	} {
		for _, a := range agents {
			if err := step(a); err != nil {
				t.Fatal(err)
			}
		}
	}
	f := testFacts("h02")
	f.MemFreeMiB = 777
	agents[2].Update(f)
	took := waitFor(t, 10*time.Second, "an update after the rotation on every agent", func() bool {
		for _, a := range agents {
			if m, _ := a.Member("h02"); m.Facts.MemFreeMiB != 777 {
				return false
			}
		}
		return true
	})
	t.Logf("update after the rotation reached 3 agents in %v", took)

	old := startAgent(t, testConfig("old"), testFacts("old")) // testKey only
	if _, err := old.Join([]string{agents[0].Addr()}); err == nil {
		t.Fatal("a host with the removed key joined")
	}
	cfg := testConfig("new")
	cfg.Key = k2
	nw := startAgent(t, cfg, testFacts("new"))
	if _, err := nw.Join([]string{agents[0].Addr()}); err != nil {
		t.Fatalf("a host with the new key cannot join: %v", err)
	}
	waitFor(t, convergeTimeout, "the new host seen by all", func() bool { return converged(append(agents, nw)) })
	for _, a := range agents {
		if _, ok := a.Member("old"); ok {
			t.Errorf("%s lists the host with the removed key", a.Name())
		}
	}
}
