package lab

import (
	"context"
	"fmt"
)

// CutMigrationLink takes down the switch's port of host h's migration
// network (the switch end of h's mig0 veth), as a cable pulled at the
// switch would: h's own interface and addresses stay as they are, its
// mig0 only loses carrier, so nothing on h is told and TCP streams on the
// migration network stall rather than reset. The management and VM
// networks are untouched: meshd, gossip, Raft and libvirtd's own
// connections carry on.
func (h *Host) CutMigrationLink(ctx context.Context) error {
	if _, err := run(ctx, "ip", "-n", switchNS, "link", "set", h.migPort(), "down"); err != nil {
		return fmt.Errorf("cut the migration link of host %s: %w", h.Name, err)
	}
	return nil
}

// RestoreMigrationLink brings the switch's port of h's migration network
// back up (see CutMigrationLink). The switch's bridges run without STP and
// with no forwarding delay, so the port forwards again at once.
func (h *Host) RestoreMigrationLink(ctx context.Context) error {
	if _, err := run(ctx, "ip", "-n", switchNS, "link", "set", h.migPort(), "up"); err != nil {
		return fmt.Errorf("restore the migration link of host %s: %w", h.Name, err)
	}
	return nil
}

// migPort is the switch end of h's migration veth (see setupHostNet).
func (h *Host) migPort() string { return h.Name + "-mig" }
