package shutdown

import "fmt"

// Policy is what a system shutdown or reboot does to the host's VMs.
type Policy string

// The policies, as Proxmox HA names them.
const (
	// Migrate drains the host (every VM moves to another host), then the
	// host leaves the mesh.
	Migrate Policy = "migrate"
	// Freeze leaves the VMs where they are and marks the host frozen
	// (Maintenance) so that nothing is placed on it; meshd thaws it when
	// it starts again.
	Freeze Policy = "freeze"
	// Conditional freezes on a reboot and migrates on a power-off.
	Conditional Policy = "conditional"
)

// DefaultPolicy is conditional, as Proxmox's: a reboot (a kernel update)
// is short and does not pay for moving every VM away and back, while a
// power-off (hardware work, of unknown length) must not leave VMs down.
const DefaultPolicy = Conditional

// ParsePolicy reads a policy's name.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case Migrate, Freeze, Conditional:
		return p, nil
	}
	return "", fmt.Errorf("shutdown policy %q: want %s, %s or %s", s, Migrate, Freeze, Conditional)
}

// Kind is the kind of shutdown systemd runs.
type Kind string

// Shutdown kinds, as systemd's job queue tells them.
const (
	// None: no shutdown job is queued (a plain stop or restart of meshd).
	None Kind = "none"
	// Reboot: reboot.target (or kexec.target, soft-reboot.target) queued.
	Reboot Kind = "reboot"
	// PowerOff: poweroff.target or halt.target queued, or shutdown.target
	// without a reboot target (Proxmox reads it so too).
	PowerOff Kind = "poweroff"
	// Unknown: logind announced a shutdown but systemd has not queued its
	// target yet.
	Unknown Kind = "unknown"
)

// Action is what meshd does.
type Action string

// Actions.
const (
	ActNone    Action = "none"    // stop, VMs stay, host stays a member (a restart)
	ActMigrate Action = "migrate" // drain, then leave
	ActFreeze  Action = "freeze"  // mark frozen, VMs stay
	ActDefer   Action = "defer"   // decide later, from the job queue
)

// Decide maps a policy and a kind of shutdown to an action.
func Decide(p Policy, k Kind) Action {
	if k == None {
		return ActNone
	}
	switch p {
	case Migrate:
		return ActMigrate
	case Freeze:
		return ActFreeze
	}
	switch k {
	case Reboot:
		return ActFreeze
	case PowerOff:
		return ActMigrate
	}
	return ActDefer
}

// Job is one job of systemd's queue (ListJobs).
type Job struct {
	Unit string
	Type string // start, stop, …
}

// KindOf reads the shutdown kind from systemd's job queue, as Proxmox's
// LRM does with `systemctl list-jobs`.
func KindOf(jobs []Job) Kind {
	var shutdown, reboot, poweroff bool
	for _, j := range jobs {
		if j.Type != "start" {
			continue
		}
		switch j.Unit {
		case "reboot.target", "kexec.target", "soft-reboot.target":
			reboot = true
		case "poweroff.target", "halt.target":
			poweroff = true
		case "shutdown.target":
			shutdown = true
		}
	}
	switch {
	case reboot:
		return Reboot
	case poweroff || shutdown:
		return PowerOff
	}
	return None
}

// KindOfType reads the "type" logind (systemd 255 and later) gives a
// shutdown in PreparingForShutdownWithMetadata: the name of the delayed
// action (handle_action_to_string: reboot, kexec, soft-reboot, poweroff,
// halt). Anything else, or no type, is Unknown: the job queue decides.
func KindOfType(typ string) Kind {
	switch typ {
	case "reboot", "kexec", "soft-reboot":
		return Reboot
	case "poweroff", "halt":
		return PowerOff
	}
	return Unknown
}
