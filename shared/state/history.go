package state

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pipefn/pipefn/shared/api"
)

// RunEvent is one entry of a run's history stream.
type RunEvent struct {
	// ID is the stream entry id; pass it back as fromID to continue after it (SSE's
	// Last-Event-ID).
	ID string `json:"id"`
	// Type is created, state, task, retry, archived or unarchived.
	Type    string    `json:"type"`
	State   string    `json:"state,omitempty"`
	TaskID  string    `json:"task_id,omitempty"`
	At      time.Time `json:"at"`
	Attempt int       `json:"attempt"`
	// Data is the task's JSON (api.TaskDetail) for task events.
	Data json.RawMessage `json:"data,omitempty"`
}

// RunEvents returns up to count history entries of a run after fromID ("" or "0" for the
// beginning), waiting up to block for the first one when there is none yet (0: do not
// wait). It returns no entries and no error when the wait times out.
func (s *Store) RunEvents(ctx context.Context, team, runID, fromID string, count int64, block time.Duration) ([]RunEvent, error) {
	if err := checkTeam(team); err != nil {
		return nil, err
	}
	if err := checkID("run", runID); err != nil {
		return nil, err
	}
	if fromID == "" {
		fromID = "0"
	}
	if count <= 0 {
		count = 100
	}
	k := key(team, "run", runID, "events")
	var msgs []redis.XMessage
	if block <= 0 {
		var err error
		msgs, err = s.rdb.XRangeN(ctx, k, "("+fromID, "+", count).Result()
		if err != nil {
			return nil, redisErr("read history of run "+runID, err)
		}
	} else {
		res, err := s.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{k, fromID}, Count: count, Block: block}).Result()
		if errors.Is(err, redis.Nil) {
			return nil, nil
		}
		if err != nil {
			return nil, redisErr("watch history of run "+runID, err)
		}
		for _, st := range res {
			msgs = append(msgs, st.Messages...)
		}
	}
	out := make([]RunEvent, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, decodeRunEvent(m))
	}
	return out, nil
}

func decodeRunEvent(m redis.XMessage) RunEvent {
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	e := RunEvent{ID: m.ID, Type: str("type"), State: str("state"), TaskID: str("task"), At: fromMS(str("at"))}
	e.Attempt, _ = strconv.Atoi(str("attempt"))
	if d := str("data"); d != "" {
		e.Data = json.RawMessage(d)
	}
	return e
}

// ErrStopWatch, returned by a Watch callback, ends the watch without an error.
var ErrStopWatch = errors.New("stop watching")

// watchBlock bounds each blocking read of the per-watcher path (watchPerReader): go-redis
// cannot interrupt a blocked read when ctx is cancelled, so that path notices cancellation
// within this time.
const watchBlock = time.Second

// Watch calls fn for every history entry of a run after fromID ("" or "0": from the
// beginning; "$": only entries added from now on; otherwise a stream id such as an SSE
// Last-Event-ID), in order, live, until ctx ends (noticed at once), fn returns
// ErrStopWatch (Watch returns nil) or another error (returned). fn runs on the caller's
// goroutine. The stream of a finished run expires after an hour: show GetRun first, then
// watch for what follows.
//
// The backlog is read with XRANGE; live entries come from the Store's watch hub, which
// reads every watched run with one XREAD BLOCK, so watchers do not each pin a pooled Redis
// connection. A watcher that falls watchBuffer entries behind is ended with an Unavailable
// error: reconnect from the last id received.
func (s *Store) Watch(ctx context.Context, team, runID, fromID string, fn func(RunEvent) error) error {
	if err := checkTeam(team); err != nil {
		return err
	}
	if err := checkID("run", runID); err != nil {
		return err
	}
	k := key(team, "run", runID, "events")
	n, err := s.rdb.Exists(ctx, key(team, "run", runID)).Result()
	if err != nil {
		return redisErr("watch run "+runID, err)
	}
	if n == 0 {
		return api.Errorf(api.KindNotFound, "run %s not found in team %s", runID, team)
	}
	switch fromID {
	case "":
		fromID = "0-0"
	case "$":
		// Resolve "$" once to the current last id: repeating "$" on every read would skip
		// entries added between two reads.
		last, err := s.rdb.XRevRangeN(ctx, k, "+", "-", 1).Result()
		if err != nil {
			return redisErr("watch run "+runID, err)
		}
		fromID = "0-0"
		if len(last) == 1 {
			fromID = last[0].ID
		}
	}
	from, ok := parseStreamID(fromID)
	if !ok {
		return api.Errorf(api.KindInvalid, "watch run %s: from id %q is not a history entry id (<ms>-<seq>)", runID, fromID)
	}
	if watchPerReader {
		err = s.watchPolling(ctx, team, runID, from.String(), fn)
	} else {
		err = s.watchHubbed(ctx, team, runID, k, from, fn)
	}
	if errors.Is(err, ErrStopWatch) {
		return nil
	}
	return err
}

// watchPolling is the per-watcher path: one blocking XREAD per watcher, each holding a
// pooled connection while it blocks. Kept only to measure the hub against it.
func (s *Store) watchPolling(ctx context.Context, team, runID, fromID string, fn func(RunEvent) error) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		block := watchBlock
		if dl, ok := ctx.Deadline(); ok {
			if d := time.Until(dl); d < block {
				block = max(d, time.Millisecond)
			}
		}
		evs, err := s.RunEvents(ctx, team, runID, fromID, 100, block)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		for _, e := range evs {
			if err := fn(e); err != nil {
				return err
			}
			fromID = e.ID
		}
	}
}
