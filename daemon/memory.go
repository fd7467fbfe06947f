package daemon

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"

	ucli "github.com/urfave/cli/v2"
)

// defaultGCPercent is meshd's garbage collector target (Go's GOGC): the
// heap may grow to 1.5 times what is live between collections, not Go's
// default 2 times. meshd runs on hypervisors, whose memory belongs to the
// guests, and its live heap is small (the replicated state, a few MiB);
// what made a leader's RSS larger than every other host's was mostly the
// garbage its steady RPC traffic leaves between collections, which a
// follower that allocates little hands back to the kernel (issue 15's RSS
// goal: the leader of 100 hosts measured 61 MiB against < 60 MiB, its
// anonymous memory twice a follower's). The price is collections half as
// far apart: the idle leader's profile put the collector at 3 % of its
// samples (0.13 % of a core at 100 hosts), so at most about that more.
// A soft memory limit (GOMEMLIMIT) was not chosen as the default: the live
// heap grows with the mesh (hosts, VMs, migrations), and a fixed limit
// below it would make the collector run without pause instead.
const defaultGCPercent = 50

// gcFlag is --gc-percent (gc_percent in a configuration file).
var gcFlag = &ucli.IntFlag{Name: "gc-percent", Value: defaultGCPercent, EnvVars: []string{"MESH_GC_PERCENT"},
	Usage: "garbage collector target as Go's GOGC: the heap grows to (100+N)% of its live size between collections; lower trades CPU for memory (10-1000; a GOGC in the environment wins over the default)"}

// checkGCPercent refuses a --gc-percent out of range.
func checkGCPercent(c *ucli.Context) error {
	if p := c.Int(gcFlag.Name); p < 10 || p > 1000 {
		return fmt.Errorf("--gc-percent %d: want 10 to 1000", p)
	}
	return nil
}

// setGCPercent applies --gc-percent (checked by checkGCPercent), and says
// in the log which target runs and where it came from. An operator's GOGC
// in meshd's environment is kept unless --gc-percent (or gc_percent) was
// given too.
func setGCPercent(c *ucli.Context, log *slog.Logger) {
	if env := os.Getenv("GOGC"); env != "" && !c.IsSet(gcFlag.Name) {
		log.Info("memory: garbage collector target from the environment", "GOGC", env)
		return
	}
	p := c.Int(gcFlag.Name)
	debug.SetGCPercent(p)
	log.Info("memory: garbage collector target", "gc_percent", p, "default", p == defaultGCPercent)
}
