package gossip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"

	"github.com/hostmesh/hostmesh/fsm"
)

// ErrInvalid marks a record, pull request or state message that breaks the
// rules below. Such input is dropped and counted (Agent.Stats), never
// stored: gossip is the door through which host facts enter the leader's
// proposals, and a key holder with a bug or bad intent must not get junk,
// absurd capacities or unbounded lists through it.
var ErrInvalid = errors.New("invalid gossip input")

// Bounds of gossiped input.
const (
	// MaxVersion bounds a facts version. A host's counter moves once per
	// change of its facts: at a thousand changes a second it reaches 2^53
	// in 285,000 years. A bound well below 2^64 means a refute (stale
	// version + 1) can never wrap around to 0, and the value stays exact in
	// any JSON reader.
	MaxVersion = 1<<53 - 1
	// maxLead is how far a peer's record may be ahead of the version the
	// peer itself advertises in its memberlist metadata. Honest records lead
	// by a few versions at most (gossip outruns the metadata for a moment);
	// a record further ahead is one its owner does not claim (forged, or a
	// previous life), and it must not win: it is refused, and a held one
	// is discarded and the owner's own record pulled. This is what keeps a
	// record at the largest version from winning forever.
	maxLead = 1 << 16
	// maxStateRecords bounds the records of one push/pull state message.
	maxStateRecords = 4096
	// maxEntries bounds the agent's table: records of hosts memberlist has
	// not reported are refused beyond it.
	maxEntries = 2 * maxStateRecords
)

// validateRecord checks one record before it may be merged: its name, its
// version and its facts, with the rules of the replicated state (fsm.Validate
// of the UpsertHost the leader would propose) plus addresses that parse.
func validateRecord(r record) error {
	if err := validName(r.Name); err != nil {
		return err
	}
	if r.Version == 0 || r.Version > MaxVersion {
		return fmt.Errorf("%w: record of %q: version %d outside 1..%d", ErrInvalid, r.Name, r.Version, uint64(MaxVersion))
	}
	if r.Facts.Name != r.Name {
		return fmt.Errorf("%w: record of %q carries the facts of %q", ErrInvalid, r.Name, r.Facts.Name)
	}
	return validateFacts(r.Facts)
}

// validateFacts checks facts as the replicated state would, and that every
// address parses.
func validateFacts(f fsm.HostFacts) error {
	entry, err := fsm.Encode(fsm.CmdUpsertHost, fsm.UpsertHost{Facts: f})
	if err != nil {
		return fmt.Errorf("%w: facts of %q: %v", ErrInvalid, f.Name, err)
	}
	if err := fsm.Validate(entry); err != nil {
		return fmt.Errorf("%w: facts of %q: %v", ErrInvalid, f.Name, err)
	}
	for _, a := range [][2]string{{"api address", f.APIAddr}, {"raft address", f.RaftAddr}} {
		if a[1] != "" && !validHostPort(a[1]) {
			return fmt.Errorf("%w: facts of %q: %s %q is not HOST:PORT", ErrInvalid, f.Name, a[0], a[1])
		}
	}
	for _, a := range [][2]string{{"management address", f.MgmtAddr}, {"migration address", f.MigrationAddr}} {
		if a[1] != "" && !validHost(a[1]) {
			return fmt.Errorf("%w: facts of %q: %s %q is not an IP address or host name", ErrInvalid, f.Name, a[0], a[1])
		}
	}
	if f.HypervisorURI != "" {
		if u, err := url.Parse(f.HypervisorURI); err != nil || u.Scheme == "" {
			return fmt.Errorf("%w: facts of %q: hypervisor URI %q does not parse", ErrInvalid, f.Name, f.HypervisorURI)
		}
	}
	return nil
}

// validName checks a host name as the replicated state does: a DNS name of
// ASCII letters, digits and . - _ (not first), 1 to 253 bytes.
func validName(s string) error {
	if len(s) == 0 || len(s) > 253 {
		return fmt.Errorf("%w: host name of %d bytes, want 1 to 253", ErrInvalid, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '.' && c != '-' && c != '_')) {
			return fmt.Errorf("%w: host name %q: only letters, digits and . - _ (not first)", ErrInvalid, s)
		}
	}
	return nil
}

// validHost accepts an IP address or a host name.
func validHost(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	return validName(s) == nil
}

// validHostPort accepts HOST:PORT with a port of 1 to 65535.
func validHostPort(s string) bool {
	h, p, err := net.SplitHostPort(s)
	if err != nil || !validHost(h) {
		return false
	}
	n, err := strconv.ParseUint(p, 10, 16)
	return err == nil && n > 0
}

// validateWant checks a pull request: who asks, where the answer goes, and
// what for.
func validateWant(w want) error {
	if err := validName(w.From); err != nil {
		return err
	}
	if err := validName(w.Name); err != nil {
		return err
	}
	if w.Version > MaxVersion {
		return fmt.Errorf("%w: pull of %q at version %d", ErrInvalid, w.Name, w.Version)
	}
	ap, err := netip.ParseAddrPort(w.Addr)
	if err != nil || ap.Port() == 0 {
		return fmt.Errorf("%w: pull from %q: answer address %q is not IP:PORT", ErrInvalid, w.From, w.Addr)
	}
	return nil
}
