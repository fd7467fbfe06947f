package api

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// ACLToken is one ACL token as the API shows it. SecretID, the credential
// sent as `Authorization: Bearer`, is only in the answer that created the
// token (bootstrap, create): the mesh keeps its SHA-256, never the secret.
type ACLToken struct {
	AccessorID string    `json:"accessor_id"`
	Name       string    `json:"name"`
	Policy     string    `json:"policy"`
	Created    time.Time `json:"created"`
	CreatedBy  string    `json:"created_by,omitempty"`
	SecretID   string    `json:"secret_id,omitempty"`
}

// ACLTokenRequest is the body of POST /v1/acl/tokens.
type ACLTokenRequest struct {
	Name   string `json:"name"`
	Policy string `json:"policy"`
}

// ACLBootstrap creates the management token, once per mesh
// (POST /v1/acl/bootstrap); it needs no token.
func (c *Client) ACLBootstrap(ctx context.Context) (ACLToken, error) {
	var t ACLToken
	err := c.Do(ctx, http.MethodPost, "/v1/acl/bootstrap", struct{}{}, &t)
	return t, err
}

// ACLTokens lists the tokens, without secrets (GET /v1/acl/tokens).
func (c *Client) ACLTokens(ctx context.Context) ([]ACLToken, error) {
	var ts []ACLToken
	err := c.Do(ctx, http.MethodGet, "/v1/acl/tokens", nil, &ts)
	return ts, err
}

// ACLTokenCreate creates a token; the answer holds its secret
// (POST /v1/acl/tokens).
func (c *Client) ACLTokenCreate(ctx context.Context, req ACLTokenRequest) (ACLToken, error) {
	var t ACLToken
	err := c.Do(ctx, http.MethodPost, "/v1/acl/tokens", req, &t)
	return t, err
}

// ACLTokenDelete deletes the token of that accessor ID or name
// (DELETE /v1/acl/tokens/{id}).
func (c *Client) ACLTokenDelete(ctx context.Context, idOrName string) (ACLToken, error) {
	var t ACLToken
	err := c.Do(ctx, http.MethodDelete, "/v1/acl/tokens/"+url.PathEscape(idOrName), nil, &t)
	return t, err
}

// ACLTokenSelf is the caller's own token, without its secret
// (GET /v1/acl/token/self).
func (c *Client) ACLTokenSelf(ctx context.Context) (ACLToken, error) {
	var t ACLToken
	err := c.Do(ctx, http.MethodGet, "/v1/acl/token/self", nil, &t)
	return t, err
}
