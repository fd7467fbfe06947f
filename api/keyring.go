package api

import (
	"context"
	"net/http"
)

// KeyringRequest is the body of the keyring's install, use and remove: one
// gossip key, base64 as `meshctl keygen` prints it.
type KeyringRequest struct {
	Key string `json:"key"`
}

// KeyringResponse is what the meshd asked gathered from every alive member
// of the mesh, as `consul keyring` reports: which hosts answered, which
// failed, and on how many hosts each key is installed and primary. Keys are
// named by fingerprint (sha256:…), never shown.
type KeyringResponse struct {
	// Op is list, install, use or remove; Key the fingerprint acted on.
	Op  string `json:"op"`
	Key string `json:"key,omitempty"`
	// Hosts is every alive member asked, by name, with its answer.
	Hosts []KeyringHost `json:"hosts"`
	// Keys counts every key any host holds, by fingerprint.
	Keys []KeyCount `json:"keys"`
	// Asked and Failed count hosts; a failed host missed the change.
	Asked  int `json:"asked"`
	Failed int `json:"failed"`
	// NotAsked are members gossip knows but does not see alive: they miss
	// the change and will need it when they come back.
	NotAsked []string `json:"not_asked,omitempty"`
}

// KeyringHost is one host's keyring after the operation, or why it failed.
type KeyringHost struct {
	Host    string   `json:"host"`
	Primary string   `json:"primary,omitempty"`
	Keys    []string `json:"keys,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// KeyCount is one key: on how many hosts it is installed, and primary.
type KeyCount struct {
	Key       string `json:"key"`
	Installed int    `json:"installed"`
	Primary   int    `json:"primary"`
}

// Keyring lists every host's gossip keys (GET /v1/keyring).
func (c *Client) Keyring(ctx context.Context) (KeyringResponse, error) {
	var r KeyringResponse
	err := c.Do(ctx, http.MethodGet, "/v1/keyring", nil, &r)
	return r, err
}

// InstallKey adds a key to every host's keyring, the first step of a
// rotation (POST /v1/keyring).
func (c *Client) InstallKey(ctx context.Context, key string) (KeyringResponse, error) {
	return c.keyringOp(ctx, http.MethodPost, key)
}

// UseKey makes an installed key every host's primary (PUT /v1/keyring);
// refused unless every alive host has it installed.
func (c *Client) UseKey(ctx context.Context, key string) (KeyringResponse, error) {
	return c.keyringOp(ctx, http.MethodPut, key)
}

// RemoveKey drops a key from every host (DELETE /v1/keyring); refused while
// it is any host's primary.
func (c *Client) RemoveKey(ctx context.Context, key string) (KeyringResponse, error) {
	return c.keyringOp(ctx, http.MethodDelete, key)
}

func (c *Client) keyringOp(ctx context.Context, method, key string) (KeyringResponse, error) {
	var r KeyringResponse
	err := c.Do(ctx, method, "/v1/keyring", KeyringRequest{Key: key}, &r)
	return r, err
}

// InternalKeyring runs one keyring operation on the host asked only
// (host-only: the meshd that serves /v1/keyring fans out this way). Method
// GET lists; POST, PUT and DELETE install, use and remove key.
func (c *Client) InternalKeyring(ctx context.Context, method, key string) (KeyringHost, error) {
	var in any
	if method != http.MethodGet {
		in = KeyringRequest{Key: key}
	}
	var h KeyringHost
	err := c.Do(ctx, method, "/v1/internal/keyring", in, &h)
	return h, err
}
