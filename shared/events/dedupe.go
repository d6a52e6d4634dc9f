package events

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// Deduper remembers event ids per team for a while. shared/state's Store implements it on
// Redis (SET NX EX), so handler replicas share what they have seen.
type Deduper interface {
	// SeenEvent records id and reports whether this is its first sighting.
	SeenEvent(ctx context.Context, team, id string, ttl time.Duration) (first bool, err error)
	// ForgetEvent drops id, so that a redelivery after a failed attempt is handled again.
	ForgetEvent(ctx context.Context, team, id string) error
}

// Dedupe wraps h so that an event delivered again (same source and id, as CloudEvents
// defines identity) within ttl is acknowledged without running h. When h fails the mark is
// removed so the Broker's redelivery is handled; a duplicate gets no reply, since the
// first delivery already replied.
func Dedupe(d Deduper, ttl time.Duration, h Handler) Handler {
	return func(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
		team := Team(e)
		key := e.Source() + "|" + e.ID()
		first, err := d.SeenEvent(ctx, team, key, ttl)
		if err != nil {
			return nil, fmt.Errorf("dedupe event %s (%s): %w", e.ID(), e.Type(), err)
		}
		if !first {
			slog.DebugContext(ctx, "duplicate event acknowledged", "type", e.Type(), "id", e.ID(), "team", team)
			return nil, nil
		}
		reply, err := h(ctx, e)
		if err != nil {
			// A fresh context: ctx may be the cancelled cause of err.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if ferr := d.ForgetEvent(fctx, team, key); ferr != nil {
				return nil, fmt.Errorf("%w (and forgetting the dedupe mark failed, redelivery will be dropped: %v)", err, ferr)
			}
			return nil, err
		}
		return reply, nil
	}
}
