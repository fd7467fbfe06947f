// Package shutdown is what meshd does when the machine under it shuts down
// or reboots, as systemd tells it: a logind delay inhibitor
// (what=shutdown, mode=delay) held while meshd runs, logind's
// PrepareForShutdown(true) signal, and systemd's job queue (ListJobs) to
// tell a reboot from a power-off, all over the system D-Bus.
//
// The shutdown policy is Proxmox HA's: migrate (drain the host, then leave
// the mesh), freeze (leave the VMs where they are, mark the host frozen so
// nothing is placed on it, thaw it when meshd starts again) or conditional
// (a reboot freezes, a power-off migrates). A SIGTERM outside a shutdown
// (systemctl restart, an upgrade) is none of these: meshd stops and the
// VMs keep running where they are.
//
// Why both logind and the job queue: logind sends PrepareForShutdown before
// it asks systemd for reboot.target or poweroff.target, so at that moment
// the job queue is still empty for a `systemctl reboot` through logind.
// systemd 255 and later say which in logind's
// PreparingForShutdownWithMetadata property ({"preparing": true, "type":
// "reboot"}), read first; systemd 252 (Debian 12) has no such property. The job queue tells the kind once systemd runs the shutdown
// transaction and stops meshd's unit, which is where Proxmox's LRM looks
// (`systemctl list-jobs`, reboot.target queued or not). So: under migrate
// and freeze meshd acts on PrepareForShutdown, while every other unit
// still runs; under conditional it acts there when logind's metadata or
// the queue already says which (systemctl start reboot.target, a shutdown started by systemd
// itself), and otherwise releases the inhibitor and decides on the SIGTERM
// of the shutdown transaction, from the queue.
//
// A drain outliving logind's InhibitDelayMaxSec (5 s by default) is not
// cut: logind goes on, systemd stops meshd's unit with SIGTERM, and meshd
// keeps draining while it extends the stop timeout (sd_notify
// EXTEND_TIMEOUT_USEC); the unit is ordered after the network, libvirtd and
// remote file systems, so those stay up until meshd has stopped. Raise
// InhibitDelayMaxSec (a drop-in in /etc/systemd/logind.conf.d/) to let the
// whole drain run before systemd stops anything.
package shutdown
