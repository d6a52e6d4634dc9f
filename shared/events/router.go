package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/pipefn/pipefn/shared/api"
)

// Handler handles one event. Its reply, when not nil, is the next event of the chain: over
// HTTP it goes back to the Broker in the response; on the Bus it is published again.
// Delivery is at least once, so a handler must be idempotent.
type Handler func(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error)

// permanentError marks an error that redelivery cannot fix.
type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// Permanent marks err as permanent: the event is bad (or can never succeed) and must not
// be redelivered. Over HTTP it becomes 400, which a Knative Broker does not retry; the Bus
// drops it. Errors not so marked are transient and retried.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err must not be retried: marked by Permanent, or an
// api invalid-argument error (the request itself is wrong).
func IsPermanent(err error) bool {
	var p *permanentError
	if errors.As(err, &p) {
		return true
	}
	return api.KindOf(err) == api.KindInvalid
}

// Router dispatches events to handlers by type: an exact type first, then the longest
// registered prefix (for families such as Tekton's dev.tekton.event.taskrun.*).
type Router struct {
	mu       sync.RWMutex
	exact    map[string]Handler
	prefixes []prefixHandler // longest first
	log      *slog.Logger
}

type prefixHandler struct {
	prefix string
	h      Handler
}

// NewRouter returns an empty router. log may be nil (slog.Default()).
func NewRouter(log *slog.Logger) *Router {
	if log == nil {
		log = slog.Default()
	}
	return &Router{exact: map[string]Handler{}, log: log}
}

// Handle registers h for events of exactly type typ, replacing any earlier handler.
func (r *Router) Handle(typ string, h Handler) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exact[typ] = h
}

// HandlePrefix registers h for every type that starts with prefix.
func (r *Router) HandlePrefix(prefix string, h Handler) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.prefixes {
		if r.prefixes[i].prefix == prefix {
			r.prefixes[i].h = h
			return
		}
	}
	r.prefixes = append(r.prefixes, prefixHandler{prefix, h})
	sort.SliceStable(r.prefixes, func(i, j int) bool { return len(r.prefixes[i].prefix) > len(r.prefixes[j].prefix) })
}

// lookup finds the handler for typ.
func (r *Router) lookup(typ string) (Handler, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if h, ok := r.exact[typ]; ok {
		return h, true
	}
	for _, p := range r.prefixes {
		if strings.HasPrefix(typ, p.prefix) {
			return p.h, true
		}
	}
	return nil, false
}

// Dispatch validates e and runs its handler. An invalid event, an event with no handler,
// or an invalid reply are Permanent errors. A panicking handler is turned into a transient
// error so that one bad event does not take the process down.
func (r *Router) Dispatch(ctx context.Context, e cloudevents.Event) (reply *cloudevents.Event, err error) {
	if verr := e.Validate(); verr != nil {
		return nil, Permanent(fmt.Errorf("invalid event %q: %w", e.ID(), verr))
	}
	h, ok := r.lookup(e.Type())
	if !ok {
		return nil, Permanent(fmt.Errorf("event %s: no handler for type %q", e.ID(), e.Type()))
	}
	defer func() {
		if p := recover(); p != nil {
			r.log.ErrorContext(ctx, "event handler panicked", "type", e.Type(), "id", e.ID(), "panic", p)
			reply, err = nil, fmt.Errorf("event %s (%s): handler panicked: %v", e.ID(), e.Type(), p)
		}
	}()
	reply, err = h(ctx, e)
	if err != nil {
		return nil, err
	}
	if reply != nil {
		if verr := reply.Validate(); verr != nil {
			return nil, Permanent(fmt.Errorf("event %s (%s): handler replied with an invalid event: %w", e.ID(), e.Type(), verr))
		}
	}
	return reply, nil
}
