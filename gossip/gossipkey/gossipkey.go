// Package gossipkey makes and parses gossip encryption keys. It is apart
// from package gossip so that meshctl (keygen) does not link memberlist.
package gossipkey

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrNoKey: no encryption key was given outside dev mode.
var ErrNoKey = errors.New("gossip encryption key required (or dev mode)")

// ErrBadKey: a key that is not valid base64 or not 16, 24 or 32 bytes.
var ErrBadKey = errors.New("invalid gossip encryption key")

// Parse decodes a base64 key as given on a flag, in the environment or in a
// key file, and checks its length (AES-128, -192 or -256).
func Parse(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, ErrNoKey
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("gossip key: %v: %w", err, ErrBadKey)
	}
	switch len(key) {
	case 16, 24, 32:
		return key, nil
	}
	return nil, fmt.Errorf("gossip key: %d bytes, want 16, 24 or 32: %w", len(key), ErrBadKey)
}

// Generate returns a fresh random 32-byte key in base64, for
// `meshctl keygen` and the demo.
func Generate() string {
	key := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		// crypto/rand does not fail on supported platforms; a key of zeros
		// would be worse than stopping.
		panic(fmt.Sprintf("gossip: reading random key: %v", err))
	}
	return base64.StdEncoding.EncodeToString(key)
}
