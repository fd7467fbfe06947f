package virt

import (
	"os"

	"github.com/hostmesh/hostmesh/migrate/virt/pkipath"
)

// PeerURI is how other hosts' libvirtd reach this host's: qemu+tls on addr
// when libvirtd here has a server certificate (it then listens with TLS),
// else qemu+tcp, which carries the control link in cleartext; tls says
// which it chose so meshd can warn about the latter.
func PeerURI(addr string) (uri string, tls bool) {
	if _, err := os.Stat(pkipath.LibvirtServerCert); err == nil {
		return "qemu+tls://" + addr + "/system", true
	}
	return "qemu+tcp://" + addr + "/system", false
}
