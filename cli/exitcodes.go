package cli

// Exit codes, one table for every command (README "Exit codes", and
// meshctl --help): scripts branch on them.
const (
	exitOK = 0
	// exitFailed: meshd refused (a prerequisite check, the state does not
	// allow it, no right) or the operation failed (a migration or drain
	// that ended badly).
	exitFailed = 1
	// exitUsage: the command line is wrong (unknown command or flag, a
	// missing argument, a bad value) or names an object the mesh does not
	// know (host, VM, cluster, migration).
	exitUsage = 2
	// exitUnreachable: no meshd answered (connection refused, TLS failure,
	// no answer within --timeout) or the mesh has no leader to write to.
	exitUnreachable = 3
)

const exitCodesHelp = `Exit codes (every command):
   0  success
   1  refused or failed: a prerequisite check or the mesh's state refused it, the
      token lacks the right, or a migration or drain waited on ended badly
   2  usage: unknown command or flag, a missing or bad argument, or an unknown
      host, VM, cluster or migration
   3  meshd unreachable (refused, TLS, no answer within --timeout) or no leader

Listings take -o table|json|yaml (--json is -o json). With --wait -o json,
migrate and drain print NDJSON on stdout (one JSON object per line: "queued",
"progress" or "migration", then "end") and their text on stderr.`
