package testcluster

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/hostmesh/hostmesh/pki"
)

// newPKI gives the cluster what an operator gives a production mesh: a CA
// (its certificate in CAFile) and host certificates issued on demand.
func (c *Cluster) newPKI(dir string) error {
	ca, err := pki.NewCA(0)
	if err != nil {
		return err
	}
	c.CA = ca
	c.CAFile = filepath.Join(dir, pki.CAFile)
	if err := os.WriteFile(c.CAFile, ca.CertPEM(), 0o644); err != nil {
		return fmt.Errorf("CA file: %w", err)
	}
	return nil
}

// HostTLS issues a host certificate of the cluster's CA for name and
// returns it as meshd loads its files.
func (c *Cluster) HostTLS(name string) (*pki.HostTLS, error) {
	if c.CA == nil {
		return nil, fmt.Errorf("host certificate for %s: the cluster runs in DevMode, without a CA", name)
	}
	kp, err := c.CA.HostCert(pki.CertSpec{Name: name})
	if err != nil {
		return nil, err
	}
	return pki.NewHostTLS(c.CA.Cert, kp)
}
