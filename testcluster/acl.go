package testcluster

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hostmesh/hostmesh/api"
)

// newManagementToken makes the cluster's management token, as an operator
// gives meshd --initial-management-token-file: every host starts with it,
// and Client authenticates with it.
func (c *Cluster) newManagementToken(dir string) error {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("management token: %w", err)
	}
	c.ManagementToken = hex.EncodeToString(b)
	c.TokenFile = filepath.Join(dir, "management.token")
	if err := os.WriteFile(c.TokenFile, []byte(c.ManagementToken+"\n"), 0o600); err != nil {
		return fmt.Errorf("management token file: %w", err)
	}
	return nil
}

// TokenClient is a client of the API at apiAddr as an operator holding
// token ("" for none) reaches it: HTTPS verified with the cluster's CA, no
// client certificate. A new client each call: the caller closes it.
func (c *Cluster) TokenClient(apiAddr, token string) *api.Client {
	cfg := api.Config{Addr: "http://" + apiAddr, Token: token}
	if c.CA != nil {
		cfg.Addr = apiAddr
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: x509.NewCertPool()}
		cfg.TLS.RootCAs.AddCert(c.CA.Cert)
	}
	cl, err := api.NewClient(cfg)
	if err != nil {
		c.t.Fatalf("testcluster: API client of %s: %v", apiAddr, err)
	}
	return cl
}

// initialToken is what hosts start with as their initial management token.
func (c *Cluster) initialToken() string {
	if c.opts.NoInitialToken {
		return ""
	}
	return c.ManagementToken
}
