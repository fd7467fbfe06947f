package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/gossip/gossipkey"
)

// ClusterCommand shows or changes a cluster's migration limits.
var ClusterCommand = &ucli.Command{
	Name:         "cluster",
	Usage:        "show or set a cluster's slots, bandwidth, default policy and migration transport",
	ArgsUsage:    "CLUSTER",
	BashComplete: completeClusters,
	Flags: []ucli.Flag{
		&ucli.IntFlag{Name: "max-outgoing", Usage: "migrations leaving one host at once"},
		&ucli.IntFlag{Name: "max-incoming", Usage: "migrations entering one host at once"},
		&ucli.IntFlag{Name: "max-concurrent", Usage: "migrations running in the cluster at once"},
		&ucli.StringFlag{Name: "bandwidth-mode", Usage: "fixed (per migration) or auto (divide the migration network)"},
		&ucli.Uint64Flag{Name: "bandwidth", Usage: "per-migration cap in MiB/s (fixed mode)"},
		&ucli.Uint64Flag{Name: "migration-net", Usage: "migration network capacity in MiB/s (auto mode)"},
		&ucli.StringFlag{Name: "policy", Usage: "default convergence policy"},
		&ucli.DurationFlag{Name: "setup-overlap", Usage: "auto bandwidth: start the next migration's setup this long before a transfer is predicted to end (0 turns it off; switching to auto sets 2s)"},
		&ucli.StringFlag{Name: "parallel", Usage: "connections per migration: auto (one per 10 Gb/s of the migration network, at most the VM's vCPUs) or 1 to 64"},
		&ucli.StringFlag{Name: "migration-transport", Usage: "tls (memory and disks encrypted, the default) or plain (cleartext, on purpose only)"},
		&ucli.StringFlag{Name: "balance", Usage: "automatic balancing: off (the default), memory or cpu"},
		&ucli.IntFlag{Name: "balance-threshold", Usage: "balance when the most and least loaded hosts differ by more than this many percentage points (default 10)"},
		&ucli.DurationFlag{Name: "balance-hold", Usage: "a VM that moved stays this long (default 1h)"},
		&ucli.IntFlag{Name: "balance-budget", Usage: "balancing migrations per hour at most (default 20)"},
		&ucli.StringFlag{Name: "cpu-baseline", Usage: "recompute: compute the cluster's CPU baseline again from its live hosts (may lower it to admit a weaker host; it never changes by itself once set)"},
		&ucli.BoolFlag{Name: "create", Usage: "create the cluster if the mesh does not know it (without it an unknown name is an error)"},
		outputFlag, jsonFlag,
	},
	Action: func(c *ucli.Context) error {
		if c.NArg() != 1 {
			return usage(c, "exactly one cluster name")
		}
		cl, err := newClient(c)
		if err != nil {
			return err
		}
		name := c.Args().First()
		parallel := -1
		if c.IsSet("parallel") {
			if parallel, err = parseParallel(c.String("parallel")); err != nil {
				return usage(c, err.Error())
			}
		}
		var cur api.Cluster
		if c.Bool("create") {
			// The fields given are sent alone: the others take the
			// defaults (or, for a cluster that exists, keep their values).
			settings := map[string]any{"name": name}
			for flag, field := range clusterFields {
				if c.IsSet(flag) {
					settings[field] = c.Value(flag)
				}
			}
			if parallel >= 0 {
				settings["migration_parallel"] = parallel
			}
			if c.IsSet("setup-overlap") {
				settings["overlap_ms"] = c.Duration("setup-overlap").Milliseconds()
			}
			if c.IsSet("balance-hold") {
				settings["balance_hold_seconds"] = int64(c.Duration("balance-hold").Seconds())
			}
			if cur, err = cl.CreateCluster(c.Context, name, settings); err != nil {
				return err
			}
		} else {
			// An unknown cluster is a 404 (exit 2): a typo neither shows
			// defaults nor creates a cluster.
			if cur, err = cl.Cluster(c.Context, name); err != nil {
				return err
			}
			changed := false
			set := func(flag string, apply func()) {
				if c.IsSet(flag) {
					apply()
					changed = true
				}
			}
			set("max-outgoing", func() { cur.MaxOutgoing = c.Int("max-outgoing") })
			set("max-incoming", func() { cur.MaxIncoming = c.Int("max-incoming") })
			set("max-concurrent", func() { cur.MaxConcurrent = c.Int("max-concurrent") })
			set("bandwidth-mode", func() { cur.BandwidthMode = c.String("bandwidth-mode") })
			set("bandwidth", func() { cur.BandwidthMiB = c.Uint64("bandwidth") })
			set("migration-net", func() { cur.MigrationNetMiB = c.Uint64("migration-net") })
			set("policy", func() { cur.Policy = c.String("policy") })
			set("migration-transport", func() { cur.MigrationTransport = c.String("migration-transport") })
			set("parallel", func() { cur.MigrationParallel = parallel })
			set("setup-overlap", func() { cur.OverlapMs = c.Duration("setup-overlap").Milliseconds() })
			set("balance", func() { cur.Balance = c.String("balance") })
			set("balance-threshold", func() { cur.BalanceThreshold = c.Int("balance-threshold") })
			set("balance-hold", func() { cur.BalanceHoldSeconds = int64(c.Duration("balance-hold").Seconds()) })
			set("balance-budget", func() { cur.BalanceBudget = c.Int("balance-budget") })
			if changed {
				if cur, err = cl.SetCluster(c.Context, cur); err != nil {
					return err
				}
			}
		}
		if c.IsSet("cpu-baseline") {
			if v := c.String("cpu-baseline"); v != "recompute" {
				return usage(c, fmt.Sprintf("--cpu-baseline %q: the one action is recompute", v))
			}
			if cur, err = cl.RecomputeCPUBaseline(c.Context, name); err != nil {
				return err
			}
		}
		if ok, err := printed(c, cur); ok || err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "cluster %s: slots out %d / in %d per host, %d per cluster; bandwidth %s %d MiB/s (network %d MiB/s%s); policy %s; migration transport %s; connections %s%s\n",
			cur.Name, cur.MaxOutgoing, cur.MaxIncoming, cur.MaxConcurrent, cur.BandwidthMode, cur.BandwidthMiB, cur.MigrationNetMiB, overlapOf(cur), cur.Policy, transportOf(cur), parallelOf(cur), balanceOf(cur))
		fmt.Fprintln(c.App.Writer, cpuBaselineOf(cur))
		return nil
	},
}

// clusterFields maps the flags of `meshctl cluster` to the JSON fields of
// a cluster.
var clusterFields = map[string]string{
	"max-outgoing": "max_outgoing", "max-incoming": "max_incoming", "max-concurrent": "max_concurrent",
	"bandwidth-mode": "bandwidth_mode", "bandwidth": "bandwidth_mib", "migration-net": "migration_net_mib",
	"policy": "policy", "migration-transport": "migration_transport",
	"balance": "balance", "balance-threshold": "balance_threshold", "balance-budget": "balance_budget",
}

// overlapOf describes the setup overlap of an auto cluster ("" when off).
func overlapOf(c api.Cluster) string {
	if c.BandwidthMode != api.BandwidthAuto || c.OverlapMs <= 0 {
		return ""
	}
	return fmt.Sprintf(", setups overlap the last %s of transfers", time.Duration(c.OverlapMs)*time.Millisecond)
}

// balanceOf describes the cluster's automatic balancing ("" when off),
// with meshd's defaults for the settings left at zero.
func balanceOf(c api.Cluster) string {
	if c.Balance == "" || c.Balance == "off" {
		return ""
	}
	th, hold, budget := c.BalanceThreshold, c.BalanceHoldSeconds, c.BalanceBudget
	if th == 0 {
		th = 10
	}
	if hold == 0 {
		hold = 3600
	}
	if budget == 0 {
		budget = 20
	}
	return fmt.Sprintf("; balance %s within %d points, hold %s, %d moves an hour", c.Balance, th, time.Duration(hold)*time.Second, budget)
}

// cpuBaselineOf describes the cluster's computed CPU baseline: model,
// features, the hosts it came from, who set it and when.
func cpuBaselineOf(c api.Cluster) string {
	if c.CPUBaselineXML == "" {
		return fmt.Sprintf("cluster %s: CPU baseline not computed yet (no host gossiped a CPU definition)", c.Name)
	}
	return fmt.Sprintf("cluster %s: CPU baseline %s (%s, %s, from %s): %d features: %s",
		c.Name, c.CPUBaselineModel, c.CPUBaselineMode, c.CPUBaselineAt.Format(time.RFC3339), strings.Join(c.CPUBaselineHosts, ", "),
		len(c.CPUBaselineFeatures), strings.Join(c.CPUBaselineFeatures, " "))
}

// transportOf names the cluster's migration transport, flagging plain: the
// guest's memory then crosses the migration network readable.
func transportOf(c api.Cluster) string {
	if c.PlainMigrations() {
		return api.TransportPlain + " (unencrypted)"
	}
	return api.TransportTLS
}

// KeygenCommand prints a new gossip encryption key.
var KeygenCommand = &ucli.Command{
	Name:  "keygen",
	Usage: "print a new gossip encryption key for meshd --gossip-key",
	Action: func(c *ucli.Context) error {
		fmt.Fprintln(c.App.Writer, gossipkey.Generate())
		return nil
	},
}

// parseParallel reads --parallel: "auto" is 0.
func parseParallel(s string) (int, error) {
	if s == "auto" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 64 {
		return 0, fmt.Errorf("--parallel %q: auto or 1 to 64", s)
	}
	return n, nil
}

// parallelOf names the cluster's connections per migration.
func parallelOf(c api.Cluster) string {
	if c.MigrationParallel == 0 {
		return "auto"
	}
	return strconv.Itoa(c.MigrationParallel)
}
