// Package virt is the libvirt driver of migrate.Hypervisor: it reads a host's
// capabilities and guests from libvirt's XML and runs live migrations with
// virDomainMigrateToURI3 in peer-to-peer mode, so the source libvirtd talks to
// the destination directly and meshd only watches the job.
//
// Build with -tags libvirt_dlopen: libvirt.so.0 is then loaded when Open is
// first called, and a meshd binary without libvirt still runs the sim driver.
package virt

import (
	"sync"
	"time"

	"libvirt.org/go/libvirt"

	"github.com/hostmesh/hostmesh/migrate"
)

var _ migrate.Hypervisor = (*Hypervisor)(nil)

// Hypervisor is one connection to one host's libvirt. It is safe for
// concurrent use: libvirt connections serialise calls themselves.
type Hypervisor struct {
	uri  string
	conn *libvirt.Connect
	// virtType is the guests' virtualization type (SetVirtType).
	virtType string
}

var (
	eventOnce sync.Once
	eventErr  error
)

// startEventLoop registers libvirt's default event loop and runs it forever.
// Without an event loop the remote driver sends no keepalives, so a dead peer
// libvirtd would leave a migration call blocked until TCP gives up (minutes).
// It must happen before the first connection is opened.
func startEventLoop() error {
	eventOnce.Do(func() {
		if eventErr = libvirt.EventRegisterDefaultImpl(); eventErr != nil {
			return
		}
		go func() {
			for {
				if err := libvirt.EventRunDefaultImpl(); err != nil {
					// Not expected; avoid spinning if it keeps failing.
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	})
	return eventErr
}

// Open connects to the libvirt at uri (qemu:///system, qemu+tcp://IP/system,
// test:///default...).
func Open(uri string) (*Hypervisor, error) {
	if err := startEventLoop(); err != nil {
		return nil, wrap(err, "libvirt event loop")
	}
	conn, err := libvirt.NewConnect(uri)
	if err != nil {
		return nil, wrap(err, "connect to libvirt %s", uri)
	}
	return &Hypervisor{uri: uri, conn: conn}, nil
}

// URI returns the URI the hypervisor was opened with.
func (h *Hypervisor) URI() string { return h.uri }

// Close releases the connection.
func (h *Hypervisor) Close() error {
	if _, err := h.conn.Close(); err != nil {
		return wrap(err, "close libvirt %s", h.uri)
	}
	return nil
}
