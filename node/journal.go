package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// startJournal records on disk, before the hypervisor is asked, every
// migration attempt this host starts. A restarted meshd that finds a
// Running migration of its own and no job for it on its hypervisor must
// tell "started, and ended while I was down" (settle it from the
// hypervisors) from "granted, never started" (start it): only the second
// may call the hypervisor's Migrate, so that no attempt ever starts twice.
// One empty file per attempt ("m12#1") in DataDir/started; written and
// synced before Migrate, removed once the attempt is over.
type startJournal struct{ dir string }

func newStartJournal(dataDir string) (startJournal, error) {
	j := startJournal{dir: filepath.Join(dataDir, "started")}
	if err := os.MkdirAll(j.dir, 0o700); err != nil {
		return j, fmt.Errorf("start journal %s: %w", j.dir, err)
	}
	return j, nil
}

func (j startJournal) path(key string) string {
	return filepath.Join(j.dir, strings.ReplaceAll(key, "/", "_"))
}

// mark records that the attempt key is about to start, durably.
func (j startJournal) mark(key string) error {
	f, err := os.OpenFile(j.path(key), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("journal start of %s: %w", key, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("journal start of %s: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("journal start of %s: %w", key, err)
	}
	d, err := os.Open(j.dir)
	if err != nil {
		return fmt.Errorf("journal start of %s: %w", key, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("journal start of %s: %w", key, err)
	}
	return nil
}

// markSuspended records, durably and before the guest is paused, that the
// attempt's policy pauses its guest on this host (Job.Suspend): a meshd
// restarted after the job failed unwatched must know the pause was the
// migration's, to resume the guest (resumeLeftPaused), and not an
// operator's, to leave it.
func (j startJournal) markSuspended(key string) error {
	f, err := os.OpenFile(j.path(key), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("journal suspend of %s: %w", key, err)
	}
	if _, err := f.WriteString(journalSuspended); err != nil {
		f.Close()
		return fmt.Errorf("journal suspend of %s: %w", key, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("journal suspend of %s: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("journal suspend of %s: %w", key, err)
	}
	return nil
}

// journalSuspended is the content of an attempt's file once its policy
// paused the guest.
const journalSuspended = "suspended\n"

// suspended reports whether the attempt key paused its guest here.
func (j startJournal) suspended(key string) bool {
	b, err := os.ReadFile(j.path(key))
	return err == nil && string(b) == journalSuspended
}

// started reports whether the attempt key was started by this host.
func (j startJournal) started(key string) bool {
	_, err := os.Stat(j.path(key))
	return err == nil
}

// forget drops an attempt that is over.
func (j startJournal) forget(key string) { _ = os.Remove(j.path(key)) }

// keys lists the attempts recorded.
func (j startJournal) keys() []string {
	ents, err := os.ReadDir(j.dir)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
