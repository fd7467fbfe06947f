package lab

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// poll calls cond every interval until it reports true, returns an error, or
// ctx ends. The lab waits on conditions (libvirtd answering, a counter line
// appearing) this way instead of sleeping for a guessed time.
func poll(ctx context.Context, interval time.Duration, what string, cond func() (bool, error)) error {
	var last error
	for {
		ok, err := cond()
		if err == nil && ok {
			return nil
		}
		var abort *pollAbort
		if errors.As(err, &abort) {
			return abort.err
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("wait for %s: %w (last error: %v)", what, ctx.Err(), last)
			}
			return fmt.Errorf("wait for %s: %w", what, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// pollAbort wraps an error after which waiting longer cannot help; poll
// returns the wrapped error at once.
type pollAbort struct{ err error }

func (a *pollAbort) Error() string { return a.err.Error() }
