package fsm

// The field rules Validate applies to commands, for callers that check an
// input before they build a command from it (the HTTP API refuses a bad
// path or query parameter with its name, before any command exists). They
// are the same functions Validate uses, so what passes here passes there.

// CheckHostName checks a host or cluster name: a DNS name of letters,
// digits, dots, dashes and underscores. what names the input in the error.
func CheckHostName(what, s string) error {
	var c checks
	c.host(what, s)
	return c.err
}

// CheckName checks a VM, network or storage name (1 to MaxName bytes of
// printable UTF-8 without '/').
func CheckName(what, s string) error {
	var c checks
	c.name(what, s)
	return c.err
}

// CheckToken checks a short identifier-like value (a policy, a reason).
func CheckToken(what, s string) error {
	var c checks
	c.token(what, s)
	return c.err
}

// CheckMigrationID checks an "m<N>" migration ID.
func CheckMigrationID(what, s string) error {
	var c checks
	c.migrationID(what, s)
	return c.err
}

// CheckVM checks a VM as an inventory (SyncVMs) reports it.
func CheckVM(v VM) error {
	var c checks
	c.vm(v)
	return c.err
}
