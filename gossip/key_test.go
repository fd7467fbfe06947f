package gossip

import (
	"errors"
	"log/slog"
	"testing"
	"time"
)

func TestMissingKeyRefused(t *testing.T) {
	cfg := testConfig("nokey")
	cfg.Key = nil
	_, err := Start(cfg, testFacts("nokey"))
	if !errors.Is(err, ErrNoKey) {
		t.Fatalf("start without key = %v, want ErrNoKey", err)
	}
	cfg.DevMode = true
	a, err := Start(cfg, testFacts("nokey"))
	if err != nil {
		t.Fatalf("dev mode start without key: %v", err)
	}
	_ = a.Shutdown()

	cfg = testConfig("shortkey")
	cfg.Key = []byte("short")
	if _, err := Start(cfg, testFacts("shortkey")); !errors.Is(err, ErrBadKey) {
		t.Fatalf("start with 5-byte key = %v, want ErrBadKey", err)
	}
}

func TestWrongKeyCannotJoin(t *testing.T) {
	logs := &recorder{}
	cfg := testConfig("a")
	cfg.Logger = slog.New(logs)
	a := startAgent(t, cfg, testFacts("a"))

	cfg = testConfig("intruder")
	key, err := KeyFromString(GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Key = key
	b := startAgent(t, cfg, testFacts("intruder"))
	_, err = b.Join([]string{a.Addr()})
	if err == nil {
		t.Fatal("join with the wrong key succeeded")
	}
	if !IsKeyMismatch(err) {
		t.Errorf("join error with the wrong key is not a key mismatch: %v", err)
	}
	// The member's log says why, at ERROR, from memberlist's own words.
	waitFor(t, 5*time.Second, "a's ERROR naming the key mismatch", func() bool {
		return logs.has(slog.LevelError, "no installed keys could decrypt the message", "cause")
	})

	cfg = testConfig("plain")
	cfg.Key, cfg.DevMode = nil, true
	c := startAgent(t, cfg, testFacts("plain"))
	if _, err := c.Join([]string{a.Addr()}); err == nil || !IsKeyMismatch(err) {
		t.Fatalf("join without encryption: %v, want a key mismatch", err)
	}
	for _, name := range []string{"intruder", "plain"} {
		if _, ok := a.Member(name); ok {
			t.Errorf("a lists %s after its join failed", name)
		}
	}
	if n := len(b.Members()); n != 1 {
		t.Errorf("intruder sees %d members, want only itself", n)
	}
}

func TestKeyFromString(t *testing.T) {
	k := GenerateKey()
	key, err := KeyFromString(" " + k + "\n")
	if err != nil || len(key) != 32 {
		t.Fatalf("KeyFromString(GenerateKey()) = %d bytes, %v", len(key), err)
	}
	if GenerateKey() == k {
		t.Error("two generated keys are equal")
	}
	for _, bad := range []string{"", "not base64!", "c2hvcnQ="} {
		if _, err := KeyFromString(bad); err == nil {
			t.Errorf("KeyFromString(%q) succeeded", bad)
		}
	}
	if _, err := KeyFromString(""); !errors.Is(err, ErrNoKey) {
		t.Errorf("empty key: %v, want ErrNoKey", err)
	}
}
