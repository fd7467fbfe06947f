# meshd's configuration (HCL, as Consul and Nomad). Installed as
# /etc/hostmesh/meshd.hcl; files in /etc/hostmesh/meshd.d/*.hcl are read
# after it, in lexical order, and a later file's setting replaces this one's.
#
# Every setting is one of meshd's flags with _ for - (meshd --help lists
# them all). Precedence: command-line flag > MESH_* environment variable >
# these files > the flag's default. Check a change before restarting:
#
#     meshd validate-config /etc/hostmesh/meshd.hcl
#
# An unknown setting is an error naming the file and line. Secrets go by
# file path only: gossip_key cannot be set here, gossip_key_file can.
#
# `systemctl reload meshd` (SIGHUP) re-reads the files and applies what may
# change while running (log_level, the TLS certificate and key, network,
# storage_domain, shutdown_policy); a change to anything else is logged as
# needing a restart.
# A restart (SIGTERM) leaves this host's VMs running where they are.

# This host's name in the mesh (default: the hostname). Its certificate's
# name must be the same (meshctl tls cert create --host NAME).
# name = "hv1"

# VMs only move between hosts of one cluster.
cluster = "default"

data_dir = "/var/lib/hostmesh"

# The management network's address: gossip, Raft and the API listen here.
bind = "127.0.0.1"
# migration_addr = "10.1.0.11"   # memory and disk streams (default: bind)

gossip_port = 7946
raft_port   = 7300
api_port    = 7400

# Any member's gossip address. A new mesh starts on one host with
# bootstrap = true, or on N hosts together with bootstrap_expect = N;
# both are ignored once the data dir holds state.
# join = ["10.0.0.11:7946", "10.0.0.12:7946"]
# bootstrap_expect = 3

# The key encrypting gossip, created with (umask 077; meshctl keygen > FILE).
gossip_key_file = "/etc/hostmesh/gossip.key"

# Mutual TLS between hosts and on the API (meshctl tls ca create; meshctl tls
# cert create --host NAME).
ca_file   = "/etc/hostmesh/tls/ca.pem"
cert_file = "/etc/hostmesh/tls/host.pem"
key_file  = "/etc/hostmesh/tls/host-key.pem"

hypervisor  = "libvirt"
libvirt_uri = "qemu:///system"

# What this host offers: networks NAME or NAME.VLAN, storage domains NAME=DIR.
# network        = ["prod", "prod.120"]
# storage_domain = ["nfs1=/srv/nfs1"]
# The host's own are discovered too, every facts_interval and on reload: its
# Linux bridges, VLAN links (prod.120 is network prod, VLAN 120), libvirt's
# networks and its shared storage pools (netfs, or a directory on NFS/CIFS/
# CephFS). "merge" gossips both, "discovered" only those, "configured" none.
# host_facts     = "merge"
# facts_interval = "10s"

# Migrations: abort one longer than this per GiB of memory, or whose
# remaining data has not fallen for this long (oVirt's values).
completion_per_gib = "64s"
progress_timeout   = "240s"

# A drain (meshctl drain, meshctl leave, system shutdown) gives up after this.
drain_timeout = "10m"

# What a system shutdown or reboot does (meshd holds a logind delay
# inhibitor and reads systemd's job queue; a restart of meshd alone never
# moves VMs):
#   migrate      drain this host (VMs move to other hosts), then leave;
#   freeze       VMs stay; the host goes to Maintenance so nothing is placed
#                on it, and comes back Up when meshd starts again;
#   conditional  a reboot freezes, a power-off migrates (Proxmox's default).
# logind waits InhibitDelayMaxSec (5s by default) for the drain before it
# goes on; a longer drain continues while systemd stops meshd (meshd extends
# the stop timeout), after the units it is ordered after (network, libvirtd,
# remote file systems) are still up. To drain before anything stops, raise
# it: /etc/systemd/logind.conf.d/hostmesh.conf with [Login]
# InhibitDelayMaxSec=15min.
shutdown_policy = "conditional"

log_level = "info"

# Memory: the garbage collector's target, as Go's GOGC. The heap grows to
# (100+N)% of its live size between collections; meshd's default 50 keeps a
# busy leader's memory near a follower's for a little more CPU. Read at
# start (a reload logs a change and keeps the running value).
# gc_percent = 50
