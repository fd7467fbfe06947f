package daemon

import (
	"fmt"
	"log/slog"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// notify tells systemd (Type=notify) meshd's state; outside systemd
// (NOTIFY_SOCKET unset) it does nothing.
func notify(log *slog.Logger, state string) {
	if _, err := sd.SdNotify(false, state); err != nil {
		log.Warn("sd_notify", "state", state, "err", err)
	}
}

// extendWhile asks systemd for more time every interval until done closes,
// so that a drain on SIGTERM (--drain-on-sigterm) is not killed halfway by
// the unit's stop timeout.
func extendWhile(log *slog.Logger, done <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		notify(log, fmt.Sprintf("EXTEND_TIMEOUT_USEC=%d", (3*interval).Microseconds()))
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

// reloadingState is sd_notify's RELOADING=1 with the monotonic time
// systemd 253+ wants with it.
func reloadingState() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "RELOADING=1"
	}
	return fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000)
}
