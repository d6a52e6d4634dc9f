package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// BusOptions tune the in-process transport. Zero values pick the defaults.
type BusOptions struct {
	// Concurrency bounds how many handlers run at once (default 8).
	Concurrency int
	// MaxAttempts bounds deliveries of one event that fails transiently (default 5).
	MaxAttempts int
	// Backoff is the wait before the first redelivery; it doubles up to MaxBackoff
	// (defaults 50ms and 5s).
	Backoff, MaxBackoff time.Duration
	// MaxChain bounds how many replies one published event may lead to, so that two
	// handlers replying to each other cannot loop forever (default 64).
	MaxChain int
	// DeadLetter, if set, is called with every event that is given up (permanent error,
	// attempts exhausted, chain too long, bus closed), like a Broker's dead letter sink.
	DeadLetter func(e cloudevents.Event, err error)
	Logger     *slog.Logger
}

// Bus is the in-process transport: Publish hands an event to the router asynchronously,
// a reply is published again, transient failures are redelivered with backoff. It gives
// `pipefn up` the Broker's semantics (at least once, replies chain) without a network.
type Bus struct {
	r    *Router
	opts BusOptions
	sem  chan struct{}

	// base is the context handlers run under: detached from publishers (a request that
	// published an event may end long before the handler runs) and cancelled by Close.
	base   context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	inflight int
	idle     chan struct{} // closed when inflight drops to zero
	closed   bool
}

// NewBus returns a Bus that dispatches to r.
func NewBus(r *Router, opts BusOptions) *Bus {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 50 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	if opts.MaxChain <= 0 {
		opts.MaxChain = 64
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	base, cancel := context.WithCancel(context.Background())
	idle := make(chan struct{})
	close(idle)
	return &Bus{r: r, opts: opts, sem: make(chan struct{}, opts.Concurrency), base: base, cancel: cancel, idle: idle}
}

// ErrBusClosed is returned by Publish after Close.
var ErrBusClosed = errors.New("event bus is closed")

// Publish validates e and queues it for delivery; it never blocks on handlers, so a
// handler may publish from inside another handler without deadlock. Values of ctx (trace
// ids, loggers) carry over; its cancellation does not.
func (b *Bus) Publish(ctx context.Context, e cloudevents.Event) error {
	if err := e.Validate(); err != nil {
		return Permanent(fmt.Errorf("publish event %q: %w", e.ID(), err))
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return fmt.Errorf("publish event %s (%s): %w", e.ID(), e.Type(), ErrBusClosed)
	}
	if b.inflight == 0 {
		b.idle = make(chan struct{})
	}
	b.inflight++
	b.mu.Unlock()

	vals := context.WithoutCancel(ctx)
	go b.run(vals, e)
	return nil
}

// Send implements Sender.
func (b *Bus) Send(ctx context.Context, e cloudevents.Event) error { return b.Publish(ctx, e) }

// Drain waits until every published event and every reply it led to is handled (or given
// up). It returns ctx's error if ctx ends first.
func (b *Bus) Drain(ctx context.Context) error {
	b.mu.Lock()
	idle := b.idle
	b.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("drain event bus: %w", ctx.Err())
	}
}

// Close refuses new events, cancels handlers and pending redeliveries, and waits (up to
// ctx) for handlers to return. Call Drain first for a graceful shutdown.
func (b *Bus) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cancel()
	return b.Drain(ctx)
}

func (b *Bus) done() {
	b.mu.Lock()
	b.inflight--
	if b.inflight == 0 {
		close(b.idle)
	}
	b.mu.Unlock()
}

// run delivers e and then its chain of replies in this goroutine, holding one concurrency
// slot per delivery attempt.
func (b *Bus) run(vals context.Context, e cloudevents.Event) {
	defer b.done()
	for hop := 0; ; hop++ {
		if hop >= b.opts.MaxChain {
			b.giveUp(e, fmt.Errorf("reply chain longer than %d events", b.opts.MaxChain))
			return
		}
		reply, ok := b.deliver(vals, e)
		if !ok || reply == nil {
			return
		}
		e = *reply
	}
}

// deliver runs e's handler with retries; ok is false when the event was given up.
func (b *Bus) deliver(vals context.Context, e cloudevents.Event) (*cloudevents.Event, bool) {
	wait := b.opts.Backoff
	for attempt := 1; ; attempt++ {
		select {
		case b.sem <- struct{}{}:
		case <-b.base.Done():
			b.giveUp(e, ErrBusClosed)
			return nil, false
		}
		ctx, cancel := mergeCancel(vals, b.base)
		reply, err := b.r.Dispatch(ctx, e)
		cancel()
		<-b.sem
		if err == nil {
			return reply, true
		}
		if IsPermanent(err) || attempt >= b.opts.MaxAttempts {
			b.giveUp(e, fmt.Errorf("after %d attempt(s): %w", attempt, err))
			return nil, false
		}
		b.opts.Logger.WarnContext(vals, "event handler failed, redelivering", "type", e.Type(), "id", e.ID(),
			"attempt", attempt, "backoff", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-b.base.Done():
			t.Stop()
			b.giveUp(e, ErrBusClosed)
			return nil, false
		}
		wait = min(2*wait, b.opts.MaxBackoff)
	}
}

func (b *Bus) giveUp(e cloudevents.Event, err error) {
	b.opts.Logger.Error("event given up", "type", e.Type(), "id", e.ID(), "subject", e.Subject(), "team", Team(e), "err", err)
	if b.opts.DeadLetter != nil {
		b.opts.DeadLetter(e, err)
	}
}

// mergeCancel returns a context with vals' values that is cancelled with stop.
func mergeCancel(vals, stop context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(vals)
	unregister := context.AfterFunc(stop, cancel)
	return ctx, func() { unregister(); cancel() }
}
