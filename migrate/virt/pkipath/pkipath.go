// Package pkipath names libvirt's and QEMU's certificate layout: where
// libvirtd and its clients (qemu+tls://) and QEMU (VIR_MIGRATE_TLS, qemu.conf's
// default_tls_x509_cert_dir) look for their certificates when nothing else is
// configured. meshd reads it to choose its peer URI; the lab installs its
// certificates there. It is its own package so the lab, which the libvirt
// driver's tests import, can use it without an import cycle.
//
// One host certificate (it serves and dials) and the mesh CA fill every
// slot: libvirtd serves and dials peers with it, and QEMU's migration
// streams use the same pair.
package pkipath

const (
	LibvirtCACert     = "/etc/pki/CA/cacert.pem"
	LibvirtServerCert = "/etc/pki/libvirt/servercert.pem"
	LibvirtServerKey  = "/etc/pki/libvirt/private/serverkey.pem"
	LibvirtClientCert = "/etc/pki/libvirt/clientcert.pem"
	LibvirtClientKey  = "/etc/pki/libvirt/private/clientkey.pem"

	QEMUCertDir    = "/etc/pki/qemu"
	QEMUCACert     = QEMUCertDir + "/ca-cert.pem"
	QEMUServerCert = QEMUCertDir + "/server-cert.pem"
	QEMUServerKey  = QEMUCertDir + "/server-key.pem"
	QEMUClientCert = QEMUCertDir + "/client-cert.pem"
	QEMUClientKey  = QEMUCertDir + "/client-key.pem"
)

// Client-side files in a directory named by libvirt's pkipath URI parameter
// (qemu+tls://HOST/system?pkipath=DIR), for a client without /etc/pki.
const (
	ClientDirCACert = "cacert.pem"
	ClientDirCert   = "clientcert.pem"
	ClientDirKey    = "clientkey.pem"
)
