package gossip

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/memberlist"
)

// Keyring errors.
var (
	// ErrNoEncryption: the agent runs without a key (dev mode), so there is
	// no keyring to change. Turning encryption on in a running mesh would cut
	// this host off the others until every host has the key.
	ErrNoEncryption = errors.New("gossip encryption is off (dev mode): no keyring")
	// ErrKeyNotInstalled: use of a key that is not in the keyring.
	ErrKeyNotInstalled = errors.New("key is not installed")
	// ErrPrimaryKey: removal of the key that encrypts outgoing messages.
	ErrPrimaryKey = errors.New("the primary key cannot be removed (use another key first)")
	// ErrKeyFileMode: a key or keyring file other users may read.
	ErrKeyFileMode = errors.New("key file is accessible by group or others")
)

// KeyringFileName is the keyring's file in meshd's data dir, as Consul keeps
// serf/local.keyring: once it exists it is what the agent starts with, so
// rotations survive restarts.
const KeyringFileName = "gossip.keyring"

// Keyring is the keyring as shown to operators: keys by fingerprint only,
// so listing it never reveals a key.
type Keyring struct {
	// Primary encrypts every outgoing message.
	Primary string `json:"primary"`
	// Keys are every key that decrypts, primary first.
	Keys []string `json:"keys"`
}

// KeyFingerprint names a key without revealing it: the first 16 hex digits
// of its SHA-256.
func KeyFingerprint(key []byte) string {
	sum := sha256.Sum256(key)
	return "sha256:" + hex.EncodeToString(sum[:8])
}

// ReadKeyFile reads a base64 gossip key from a file that only its owner may
// access: a key readable by other users is no secret, so the file is refused
// rather than used (as ssh refuses private keys with open modes).
func ReadKeyFile(path string) ([]byte, error) {
	b, err := readPrivateFile(path)
	if err != nil {
		return nil, err
	}
	key, err := KeyFromString(string(b))
	if err != nil {
		return nil, fmt.Errorf("gossip key file %s: %w", path, err)
	}
	return key, nil
}

// readPrivateFile reads a regular file whose mode grants nothing to group or
// others.
func readPrivateFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("gossip key file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("gossip key file %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("gossip key file %s has mode %04o: %w; run chmod 600 %s", path, perm, ErrKeyFileMode, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gossip key file: %w", err)
	}
	return b, nil
}

// readKeyringFile loads a persisted keyring: a JSON array of base64 keys,
// primary first (the layout of Consul's local.keyring). It returns nil, nil
// when the file does not exist.
func readKeyringFile(path string) ([][]byte, error) {
	b, err := readPrivateFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var enc []string
	if err := json.Unmarshal(b, &enc); err != nil {
		return nil, fmt.Errorf("gossip keyring %s: %v: %w", path, err, ErrBadKey)
	}
	if len(enc) == 0 {
		return nil, fmt.Errorf("gossip keyring %s: no keys: %w", path, ErrBadKey)
	}
	keys := make([][]byte, 0, len(enc))
	for i, s := range enc {
		k, err := KeyFromString(s)
		if err != nil {
			return nil, fmt.Errorf("gossip keyring %s: key %d: %w", path, i+1, err)
		}
		keys = appendKey(keys, k)
	}
	return keys, nil
}

// writeKeyringFile replaces the persisted keyring atomically (a temporary
// file in the same directory, synced, then renamed), mode 0600.
func writeKeyringFile(path string, keys [][]byte) error {
	enc := make([]string, len(keys))
	for i, k := range keys {
		enc[i] = base64.StdEncoding.EncodeToString(k)
	}
	b, err := json.MarshalIndent(enc, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write gossip keyring %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename: nothing to remove
	if err := tmp.Chmod(0o600); err == nil {
		if _, err = tmp.Write(append(b, '\n')); err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write gossip keyring %s: %w", path, err)
	}
	return nil
}

func appendKey(keys [][]byte, k []byte) [][]byte {
	for _, have := range keys {
		if bytes.Equal(have, k) {
			return keys
		}
	}
	return append(keys, k)
}

// startKeys decides the keys the agent starts with: the persisted keyring
// once it exists (so rotations survive restarts, whatever key the command
// line still gives), else the configured key, which is then persisted.
func (c Config) startKeys() (keys [][]byte, fromFile bool, err error) {
	if c.KeyringFile != "" {
		keys, err := readKeyringFile(c.KeyringFile)
		if err != nil {
			return nil, false, err
		}
		if keys != nil {
			return keys, true, nil
		}
	}
	if err := c.checkKey(); err != nil {
		return nil, false, err
	}
	if len(c.Key) == 0 {
		return nil, false, nil // dev mode
	}
	keys = [][]byte{c.Key}
	if c.KeyringFile != "" {
		if err := writeKeyringFile(c.KeyringFile, keys); err != nil {
			return nil, false, err
		}
	}
	return keys, false, nil
}

// keyringStatus lists keys by fingerprint, primary first.
func keyringStatus(keys [][]byte) Keyring {
	kr := Keyring{Keys: make([]string, len(keys))}
	for i, k := range keys {
		kr.Keys[i] = KeyFingerprint(k)
	}
	if len(keys) > 0 {
		kr.Primary = kr.Keys[0]
	}
	return kr
}

// Keyring lists the installed keys by fingerprint.
func (a *Agent) Keyring() (Keyring, error) {
	a.keyMu.Lock()
	defer a.keyMu.Unlock()
	if a.keyring == nil {
		return Keyring{}, ErrNoEncryption
	}
	return keyringStatus(a.keys), nil
}

// InstallKey adds a key that decrypts: the first step of a rotation, to be
// done on every host before any host uses it. Installing a key twice is no
// error.
func (a *Agent) InstallKey(key []byte) error {
	return a.changeKeys("install", key, func(keys [][]byte) ([][]byte, error) {
		return appendKey(keys, key), nil
	}, (*memberlist.Keyring).AddKey)
}

// UseKey makes an installed key the primary: outgoing messages are encrypted
// with it from now on. Every host must have it installed first.
func (a *Agent) UseKey(key []byte) error {
	return a.changeKeys("use", key, func(keys [][]byte) ([][]byte, error) {
		out := [][]byte{key}
		found := false
		for _, k := range keys {
			if bytes.Equal(k, key) {
				found = true
			} else {
				out = append(out, k)
			}
		}
		if !found {
			return nil, ErrKeyNotInstalled
		}
		return out, nil
	}, (*memberlist.Keyring).UseKey)
}

// RemoveKey drops a key that is not the primary; removing a key that is not
// installed is no error.
func (a *Agent) RemoveKey(key []byte) error {
	return a.changeKeys("remove", key, func(keys [][]byte) ([][]byte, error) {
		if bytes.Equal(keys[0], key) {
			return nil, ErrPrimaryKey
		}
		out := make([][]byte, 0, len(keys))
		for _, k := range keys {
			if !bytes.Equal(k, key) {
				out = append(out, k)
			}
		}
		return out, nil
	}, (*memberlist.Keyring).RemoveKey)
}

// changeKeys computes the new keyring, persists it, then applies it to
// memberlist's: a change that cannot be persisted is not made, so a restart
// never brings back a keyring the mesh has moved away from. memberlist's
// RemoveKey shifts its key slice in place, which can make a packet being
// decrypted at that instant skip a key; gossip tolerates one lost packet.
func (a *Agent) changeKeys(op string, key []byte, next func([][]byte) ([][]byte, error),
	apply func(*memberlist.Keyring, []byte) error) error {
	if err := memberlist.ValidateKey(key); err != nil {
		return fmt.Errorf("gossip agent %q: keyring %s: %v: %w", a.name, op, err, ErrBadKey)
	}
	a.keyMu.Lock()
	defer a.keyMu.Unlock()
	if a.keyring == nil {
		return fmt.Errorf("gossip agent %q: keyring %s: %w", a.name, op, ErrNoEncryption)
	}
	keys, err := next(a.keys)
	if err != nil {
		return fmt.Errorf("gossip agent %q: keyring %s %s: %w", a.name, op, KeyFingerprint(key), err)
	}
	if a.cfg.KeyringFile != "" {
		if err := writeKeyringFile(a.cfg.KeyringFile, keys); err != nil {
			return fmt.Errorf("gossip agent %q: keyring %s: %w", a.name, op, err)
		}
	}
	if err := apply(a.keyring, key); err != nil {
		return fmt.Errorf("gossip agent %q: keyring %s %s: %w", a.name, op, KeyFingerprint(key), err)
	}
	a.keys = keys
	a.log.Info("gossip keyring changed", "op", op, "key", KeyFingerprint(key),
		"primary", KeyFingerprint(keys[0]), "keys", len(keys))
	return nil
}

// describeKeys is how the start-up log names the keyring.
func describeKeys(keys [][]byte) string {
	fps := make([]string, len(keys))
	for i, k := range keys {
		fps[i] = KeyFingerprint(k)
	}
	return strings.Join(fps, ",")
}
