package sim

import (
	"sync"
	"sync/atomic"
	"time"
)

// Clock is simulated time. It only moves in Advance, which fires due
// subscribers in time order; a driver goroutine (NewClock) calls Advance in
// fixed steps paced by real time × scale, a manual clock (NewManualClock) is
// advanced by its test. Jobs step synchronously inside Advance, so a job's
// state is always the state at Now: the monitor's clock and the job's elapsed
// time agree exactly, whatever the scheduler does.
//
// The driver sleeps while nothing subscribes, so simulated time stands still
// when no job or monitor runs: idle hosts and VMs cost no CPU.
type Clock struct {
	mu   sync.Mutex
	now  time.Time
	seq  uint64
	subs map[uint64]*sub

	advMu sync.Mutex // serialises Advance

	step  time.Duration
	scale float64
	wake  chan struct{}
	quit  chan struct{}
	once  sync.Once

	// parked is true while the driver waits for a subscriber, after it
	// finished its last step: the point from which simulated time stands still.
	parked atomic.Bool
}

// sub is one periodic subscriber: a synchronous callback (jobs) or a channel
// that drops ticks when full, as time.Ticker does (monitors).
type sub struct {
	id     uint64
	period time.Duration
	next   time.Time
	fn     func(now time.Time)
	ch     chan time.Time
}

// epoch is where every simulated clock starts, so runs are reproducible.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// maxCatchUp bounds how many steps the driver runs at once after the process
// was descheduled, so a stalled test machine slows the simulation down instead
// of making it jump.
const maxCatchUp = 20

// NewClock returns a clock driven in steps of step simulated time, paced so
// that scale simulated seconds pass per real second (scale 50 runs fifty times
// faster than real time). Zero values mean step 100ms and scale 1. Call Stop
// to end the driver.
func NewClock(scale float64, step time.Duration) *Clock {
	if scale <= 0 {
		scale = 1
	}
	if step <= 0 {
		step = 100 * time.Millisecond
	}
	c := newClock()
	c.step, c.scale = step, scale
	go c.drive()
	return c
}

// NewManualClock returns a clock that moves only when Advance is called.
func NewManualClock() *Clock { return newClock() }

func newClock() *Clock {
	return &Clock{
		now:  epoch,
		subs: map[uint64]*sub{},
		wake: make(chan struct{}, 1),
		quit: make(chan struct{}),
	}
}

// Now returns the current simulated time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTicker delivers the simulated time every d of simulated time. Its
// signature matches migrate.MonitorConfig.NewTicker so a monitor can watch a
// sim job in simulated time.
func (c *Clock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	ch := make(chan time.Time, 1)
	stop := c.subscribe(&sub{period: d, ch: ch})
	return ch, stop
}

// every calls fn with the simulated time every d, synchronously inside Advance.
func (c *Clock) every(d time.Duration, fn func(now time.Time)) (stop func()) {
	return c.subscribe(&sub{period: d, fn: fn})
}

func (c *Clock) subscribe(s *sub) func() {
	if s.period <= 0 {
		s.period = 100 * time.Millisecond
	}
	c.mu.Lock()
	c.seq++
	s.id = c.seq
	s.next = c.now.Add(s.period)
	c.subs[s.id] = s
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return func() {
		c.mu.Lock()
		delete(c.subs, s.id)
		c.mu.Unlock()
	}
}

// Advance moves simulated time forward by d, firing every subscriber that
// falls due on the way, earliest first (ties in subscription order).
func (c *Clock) Advance(d time.Duration) {
	c.advMu.Lock()
	defer c.advMu.Unlock()
	c.mu.Lock()
	target := c.now.Add(d)
	for {
		var due *sub
		for _, s := range c.subs {
			if s.next.After(target) {
				continue
			}
			if due == nil || s.next.Before(due.next) || (s.next.Equal(due.next) && s.id < due.id) {
				due = s
			}
		}
		if due == nil {
			c.now = target
			c.mu.Unlock()
			return
		}
		if due.next.After(c.now) {
			c.now = due.next
		}
		due.next = due.next.Add(due.period)
		now := c.now
		if due.ch != nil {
			select {
			case due.ch <- now:
			default:
			}
			continue
		}
		fn := due.fn
		c.mu.Unlock()
		fn(now)
		c.mu.Lock()
	}
}

// Stop ends the driver; the clock can still be advanced by hand.
func (c *Clock) Stop() { c.once.Do(func() { close(c.quit) }) }

func (c *Clock) idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.subs) == 0
}

// drive advances the clock while anything subscribes. It counts real time
// owed rather than ticks, so dropped ticks are made up (up to maxCatchUp).
func (c *Clock) drive() {
	period := time.Duration(float64(c.step) / c.scale)
	if period < 50*time.Microsecond {
		period = 50 * time.Microsecond
	}
	for {
		if c.idle() {
			c.parked.Store(true)
			select {
			case <-c.wake:
				c.parked.Store(false)
				continue
			case <-c.quit:
				return
			}
		}
		t := time.NewTicker(period)
		last := time.Now()
		var owed float64 // simulated nanoseconds not yet advanced
	run:
		for {
			select {
			case <-c.quit:
				t.Stop()
				return
			case now := <-t.C:
				owed += float64(now.Sub(last)) * c.scale
				last = now
				steps := int(owed / float64(c.step))
				if steps > maxCatchUp {
					steps = maxCatchUp
					owed = float64(steps) * float64(c.step)
				}
				owed -= float64(steps) * float64(c.step)
				for i := 0; i < steps; i++ {
					c.Advance(c.step)
				}
				if c.idle() {
					t.Stop()
					break run
				}
			}
		}
	}
}
