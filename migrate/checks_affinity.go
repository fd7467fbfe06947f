package migrate

import (
	"fmt"
	"strings"

	"github.com/hostmesh/hostmesh/fsm"
)

// checkAffinity refuses a destination that breaks a hard affinity rule,
// naming the rule (fsm.State.AffinityBreaches). Soft rules do not refuse:
// placement weighs them (softBreaches).
func checkAffinity(c *checkCtx) (bool, string) {
	if m := c.missing(true, false, false); m != "" {
		return false, m
	}
	var hard, soft []string
	for _, b := range c.st.AffinityBreaches(c.vmKey, c.dstName) {
		if b.Rule.Hard {
			hard = append(hard, b.String())
		} else {
			soft = append(soft, b.String())
		}
	}
	if len(hard) > 0 {
		return false, strings.Join(hard, "; ")
	}
	if len(soft) > 0 {
		return true, "no hard rule broken; soft " + strings.Join(soft, "; ")
	}
	return true, fmt.Sprintf("%s breaks no affinity rule of vm %s", c.dstName, c.vmName)
}

// softBreaches lists the soft rules moving the VM with key vm to host
// would break.
func softBreaches(st *fsm.State, vm, host string) []string {
	var out []string
	for _, b := range st.AffinityBreaches(vm, host) {
		if !b.Rule.Hard {
			out = append(out, b.Rule.Name)
		}
	}
	return out
}
