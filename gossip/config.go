package gossip

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/hostmesh/hostmesh/gossip/gossipkey"
)

// ErrNoKey is returned by Start when no encryption key is given outside dev
// mode: an unencrypted mesh would let anyone on the network inject host facts.
var ErrNoKey = gossipkey.ErrNoKey

// ErrBadKey is returned for a key that is not valid base64 or not 16, 24 or
// 32 bytes long (AES-128, -192, -256).
var ErrBadKey = gossipkey.ErrBadKey

// Config says how an Agent joins the mesh.
type Config struct {
	// Name identifies the host in the mesh; it must be unique.
	Name string
	// BindAddr is the IP to listen on; empty means all interfaces.
	BindAddr string
	// BindPort is the UDP and TCP port; 0 picks a free port (see Agent.Addr).
	BindPort int
	// AdvertiseAddr and AdvertisePort are what peers use to reach this host,
	// when they differ from the bound address (NAT, 0.0.0.0).
	AdvertiseAddr string
	AdvertisePort int
	// Key is the 16, 24 or 32-byte AES key shared by the mesh; required
	// unless DevMode or a persisted keyring exists.
	Key []byte
	// KeyringFile is where the keyring is persisted (mode 0600) after every
	// change. Once the file exists it is the keyring the agent starts with
	// and Key is ignored: a mesh that rotated its key must not be rejoined
	// with the key of the command line. Empty: not persisted.
	KeyringFile string
	// DevMode allows running without a key.
	DevMode bool
	// Fast uses short probe and gossip intervals for tests and loopback
	// clusters: a failure is noticed in about 1-2 s instead of 5-10 s. Its
	// 100 ms probe timeout assumes an unloaded machine: with ~50 agents per
	// core joining at once, starved agents are falsely declared dead (they
	// refute and rejoin).
	Fast bool
	// ReapAfter is how long a dead or left host stays in the table before
	// it is pruned (default 24 h, as Serf's reconnect timeout): long enough
	// for the leader to record its departure, bounded so that hosts that
	// come and go do not pile up.
	ReapAfter time.Duration
	// Boot is advertised from the first metadata on (see Agent.SetBoot).
	Boot Boot
	// Logger receives memberlist's and the agent's logs; nil discards them.
	Logger *slog.Logger
	// Blocked, when set, cuts this host off the gossip network while it
	// returns true: a partition, for tests. Nil in production.
	Blocked func() bool
}

// timings are the agent's own periods, scaled with the memberlist profile.
type timings struct {
	// repair is how often the agent looks for missing records and
	// unpublished metadata.
	repair time.Duration
	// grace is how long a small record may lag behind the version a peer
	// advertises before it is pulled instead of awaited from gossip.
	grace time.Duration
	// pullBackoff spaces repeated pulls of the same member.
	pullBackoff time.Duration
	// unseen is how long a record of a host memberlist never reported is
	// kept (push/pull can carry records of hosts that are gone).
	unseen time.Duration
	// reap is Config.ReapAfter with its default.
	reap time.Duration
}

func (c Config) timings() timings {
	t := timings{repair: time.Second, grace: 2 * time.Second, pullBackoff: 3 * time.Second,
		unseen: 2 * time.Minute, reap: c.ReapAfter}
	if c.Fast {
		t = timings{repair: 100 * time.Millisecond, grace: 400 * time.Millisecond,
			pullBackoff: 500 * time.Millisecond, unseen: 10 * time.Second, reap: c.ReapAfter}
	}
	if t.reap <= 0 {
		t.reap = 24 * time.Hour
	}
	return t
}

// checkKey validates the key requirement before anything binds a socket.
func (c Config) checkKey() error {
	if len(c.Key) == 0 {
		if c.DevMode {
			return nil
		}
		return fmt.Errorf("gossip agent %q: %w", c.Name, ErrNoKey)
	}
	switch len(c.Key) {
	case 16, 24, 32:
		return nil
	}
	return fmt.Errorf("gossip agent %q: key is %d bytes, want 16, 24 or 32: %w", c.Name, len(c.Key), ErrBadKey)
}

// memberlistConfig builds the memberlist configuration with the given keys
// (primary first; none: no encryption); the delegates are filled in by Start.
func (c Config) memberlistConfig(keys [][]byte) (*memberlist.Config, error) {
	mc := memberlist.DefaultLANConfig()
	if c.Fast {
		// Loopback profile: the failure detector probes five times a second
		// and a suspect is declared dead after 0.6-1.2 s, so a stopped agent
		// is noticed in about 1-2 s. Gossip every 50 ms spreads an update to
		// 100 agents in well under a second.
		mc = memberlist.DefaultLocalConfig()
		mc.ProbeInterval = 200 * time.Millisecond
		mc.ProbeTimeout = 100 * time.Millisecond
		mc.SuspicionMult = 3
		mc.SuspicionMaxTimeoutMult = 2
		mc.GossipInterval = 50 * time.Millisecond
		mc.RetransmitMult = 4
		mc.PushPullInterval = 2 * time.Second
		mc.GossipToTheDeadTime = 5 * time.Second
		mc.TCPTimeout = 2 * time.Second
		// Let a restarted test agent reclaim its name on a new port.
		mc.DeadNodeReclaimTime = time.Second
	}
	// Records are deflated already, and memberlist's LZW allocates large
	// tables per packet: compressing again costs CPU and saves nothing.
	mc.EnableCompression = false
	mc.Name = c.Name
	if c.BindAddr != "" {
		mc.BindAddr = c.BindAddr
	}
	mc.BindPort = c.BindPort
	mc.AdvertiseAddr = c.AdvertiseAddr
	mc.AdvertisePort = c.AdvertisePort
	if len(keys) > 0 {
		kr, err := memberlist.NewKeyring(keys[1:], keys[0])
		if err != nil {
			return nil, fmt.Errorf("gossip agent %q: keyring: %v: %w", c.Name, err, ErrBadKey)
		}
		mc.Keyring = kr
	}
	logger := c.Logger
	if logger == nil {
		logger = discard
	}
	mc.LogOutput = nil
	mc.Logger = memberlistLogger(logger)
	return mc, nil
}

// KeyFromString decodes a base64 key as given on a flag or in the
// environment and checks its length (see gossipkey.Parse).
func KeyFromString(s string) ([]byte, error) { return gossipkey.Parse(s) }

// GenerateKey returns a fresh random 32-byte key in base64 (see
// gossipkey.Generate).
func GenerateKey() string { return gossipkey.Generate() }
