package pki

import "fmt"

// MeshFiles is a CA and its certificates in one directory, as `meshctl tls`
// leaves them: the test harnesses, the benchmarks and the lab create their
// meshes' files with it.
type MeshFiles struct {
	Dir    string
	CA     *CA
	CAFile string
	issued map[string][2]string // name → certificate, key
}

// NewMeshFiles creates a CA in dir (which must not hold one yet).
func NewMeshFiles(dir string) (*MeshFiles, error) {
	ca, err := NewCA(0)
	if err != nil {
		return nil, err
	}
	certPath, _, err := ca.Save(dir)
	if err != nil {
		return nil, err
	}
	return &MeshFiles{Dir: dir, CA: ca, CAFile: certPath, issued: map[string][2]string{}}, nil
}

// Host issues and saves a host certificate (NAME.pem, NAME-key.pem).
func (m *MeshFiles) Host(spec CertSpec) (certFile, keyFile string, err error) {
	kp, err := m.CA.HostCert(spec)
	if err != nil {
		return "", "", err
	}
	return m.save(spec.Name, kp)
}

// Client issues and saves an operator's client certificate.
func (m *MeshFiles) Client(name string) (certFile, keyFile string, err error) {
	kp, err := m.CA.ClientCert(CertSpec{Name: name})
	if err != nil {
		return "", "", err
	}
	return m.save(name, kp)
}

func (m *MeshFiles) save(name string, kp *KeyPair) (string, string, error) {
	c, k, err := kp.Save(m.Dir)
	if err != nil {
		return "", "", err
	}
	m.issued[name] = [2]string{c, k}
	return c, k, nil
}

// MeshdFlags are meshd's TLS flags for a host issued before.
func (m *MeshFiles) MeshdFlags(host string) ([]string, error) {
	f, ok := m.issued[host]
	if !ok {
		return nil, fmt.Errorf("no certificate issued for host %q in %s", host, m.Dir)
	}
	return []string{"--ca-file", m.CAFile, "--cert-file", f[0], "--key-file", f[1]}, nil
}

// Files is the certificate and key file of a name issued before.
func (m *MeshFiles) Files(name string) (certFile, keyFile string, ok bool) {
	f, ok := m.issued[name]
	return f[0], f[1], ok
}
