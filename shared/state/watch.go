package state

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pipefn/pipefn/shared/api"
)

// Tuning of the watch hub. Variables, not constants, only so that tests can shrink them.
var (
	// watchHubBlock bounds each multi-stream XREAD of the hub. go-redis cannot interrupt a
	// blocked read, so a stream whose first watcher arrives mid-read is first read when the
	// current read ends: a new run's first live entry can arrive up to this much later (it
	// is never lost: the hub reads it from the watcher's position). Leaving never waits,
	// and joining a stream the hub already reads does not either. Shorter costs more empty
	// reads while anyone watches (one per block per group, nothing when nobody watches);
	// waking the read with CLIENT UNBLOCK would need a dedicated connection with a known
	// client id, which a ClusterClient and the embedded miniredis of `pipefn up` lack.
	watchHubBlock = 300 * time.Millisecond
	// watchBuffer is how many entries a watcher may fall behind the hub before its watch
	// ends with an error (the client then reconnects from its last id). Run streams are
	// capped at ~1000 entries and a watcher normally keeps up within a few, so 256 only
	// trips on a client that has stopped reading.
	watchBuffer = 256
	// watchPage is how many entries one backlog XRANGE or one hub XREAD takes per stream.
	watchPage int64 = 500
)

// watchPerReader switches Store.Watch back to one blocking XREAD per watcher (the design
// the hub replaced). Only the benchmark and the test that shows the pool exhaustion set
// it, to compare the two.
var watchPerReader = false

// watchHub fans the history streams of watched runs out to their watchers, so that a
// replica's watchers together hold one Redis connection per group (see watchGroupKey)
// instead of one each.
//
// It is created lazily, on a Store's first Watch, and its reader goroutine runs only while
// someone watches: it starts when the first stream of a group is joined and returns when
// the last watcher of the group has left. So a Store from New needs no Close to stop it,
// and an idle Store costs neither a goroutine nor Redis traffic.
type watchHub struct {
	rdb redis.UniversalClient
	// perTeam makes every team a group of its own: a Redis Cluster refuses a multi-key
	// XREAD whose keys live in different slots, and a team's keys share one slot (hash tag).
	perTeam bool

	mu     sync.Mutex
	groups map[string]*watchGroup
}

// watchGroup is the set of streams one reader goroutine reads with one XREAD.
type watchGroup struct {
	key     string
	streams map[string]*watchStream
	running bool
}

// watchStream is one watched history stream. A stream that loses its last watcher is
// forgotten; a later watcher adds a new watchStream, so results of a read issued for the
// old one (from another position) are recognised and dropped.
type watchStream struct {
	key string
	// cursor is the last id the hub dispatched (or the position it was added at); the
	// next read of the stream starts after it.
	cursor streamID
	subs   map[*watchSub]struct{}
}

// watchSub is one Watch call. The hub's fields below are guarded by watchHub.mu.
type watchSub struct {
	runID string
	ch    chan RunEvent
	// done is closed when the hub ends the watch; err says why.
	done chan struct{}
	err  error

	// last is the last id handed to ch (or seen before joining): entries at or before it
	// are duplicates.
	last   streamID
	group  *watchGroup
	stream *watchStream
}

// hub returns the Store's watch hub, creating it on first use: a Store that nobody
// watches never has one.
func (s *Store) hub() *watchHub {
	s.hubOnce.Do(func() {
		_, single := s.rdb.(*redis.Client)
		s.watchHub = &watchHub{rdb: s.rdb, perTeam: !single, groups: map[string]*watchGroup{}}
	})
	return s.watchHub
}

// groupKey names the reader group of a team's streams: one for all teams on a single
// Redis, one per team otherwise (cluster: one slot per team).
func (h *watchHub) groupKey(team string) string {
	if h.perTeam {
		return team
	}
	return ""
}

// join adds sub, whose last is the last id it has seen, to the readers of stream k. It
// returns false, without adding it, when the hub has already dispatched entries of k past
// sub.last: the caller reads those from Redis itself (XRANGE) and joins again, so that no
// entry is missed and none is delivered out of order.
func (h *watchHub) join(team, k string, sub *watchSub) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	gk := h.groupKey(team)
	g := h.groups[gk]
	if g == nil {
		g = &watchGroup{key: gk, streams: map[string]*watchStream{}}
		h.groups[gk] = g
	}
	st := g.streams[k]
	switch {
	case st == nil:
		st = &watchStream{key: k, cursor: sub.last, subs: map[*watchSub]struct{}{}}
		g.streams[k] = st
	case sub.last.less(st.cursor):
		return false
	}
	// sub.last >= cursor: the entries between them that the hub reads next are dropped
	// as duplicates by dispatch.
	st.subs[sub] = struct{}{}
	sub.group, sub.stream = g, st
	if !g.running {
		g.running = true
		go h.read(g)
	}
	return true
}

// leave removes sub from the hub; it never waits for the current read.
func (h *watchHub) leave(sub *watchSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.remove(sub)
}

// remove detaches sub and forgets its stream when it was the last watcher. Needs h.mu.
func (h *watchHub) remove(sub *watchSub) {
	st, g := sub.stream, sub.group
	if st == nil {
		return
	}
	delete(st.subs, sub)
	if len(st.subs) == 0 && g.streams[st.key] == st {
		delete(g.streams, st.key)
	}
	sub.stream, sub.group = nil, nil
}

// end stops sub's watch with err. Needs h.mu.
func (h *watchHub) end(sub *watchSub, err error) {
	h.remove(sub)
	sub.err = err
	close(sub.done)
}

// read is a group's reader goroutine: one XREAD BLOCK over every watched stream of the
// group, its entries dispatched to the streams' watchers, until none is left.
func (h *watchHub) read(g *watchGroup) {
	var (
		streams []*watchStream
		args    []string
	)
	for {
		h.mu.Lock()
		if len(g.streams) == 0 {
			g.running = false
			if h.groups[g.key] == g {
				delete(h.groups, g.key)
			}
			h.mu.Unlock()
			return
		}
		streams, args = streams[:0], args[:0]
		for _, st := range g.streams {
			streams = append(streams, st)
			args = append(args, st.key)
		}
		for _, st := range streams {
			args = append(args, st.cursor.String())
		}
		h.mu.Unlock()

		// The read has its own context: it serves many watchers, none of whose contexts
		// may cut it short for the others.
		res, err := h.rdb.XRead(context.Background(), &redis.XReadArgs{Streams: args, Count: watchPage, Block: watchHubBlock}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		h.mu.Lock()
		if err != nil {
			// Every watcher of this read ends with the error (as each did with its own read
			// before the hub); they reconnect from their last id, which also retries Redis.
			werr := redisErr("watch history of runs", err)
			for _, st := range streams {
				for sub := range st.subs {
					h.end(sub, werr)
				}
			}
			h.mu.Unlock()
			continue
		}
		for _, xs := range res {
			var st *watchStream
			for _, c := range streams {
				if c.key == xs.Stream {
					st = c
				}
			}
			// A stream that was forgotten (and maybe re-added from another position) since
			// the read was issued: its entries belong to nobody now.
			if st == nil || g.streams[st.key] != st {
				continue
			}
			h.dispatch(st, xs.Messages)
		}
		h.mu.Unlock()
	}
}

// dispatch hands msgs, read after st.cursor, to st's watchers. A watcher whose buffer is
// full is ended rather than waited for, so one stalled client cannot hold up the others.
// Needs h.mu.
func (h *watchHub) dispatch(st *watchStream, msgs []redis.XMessage) {
	for _, m := range msgs {
		id, ok := parseStreamID(m.ID)
		if !ok {
			continue // Redis only returns valid ids; nothing to order this one by
		}
		st.cursor = id
		ev := decodeRunEvent(m)
		for sub := range st.subs {
			if !sub.last.less(id) {
				continue
			}
			select {
			case sub.ch <- ev:
				sub.last = id
			default:
				h.end(sub, api.Errorf(api.KindUnavailable,
					"watch of run %s fell %d entries behind and was ended: reconnect from the last entry id received",
					sub.runID, watchBuffer))
			}
		}
	}
}

// watchHubbed is Store.Watch over the hub: the backlog after from straight from Redis,
// then live entries from the hub. k is the run's history stream.
func (s *Store) watchHubbed(ctx context.Context, team, runID, k string, from streamID, fn func(RunEvent) error) error {
	h := s.hub()
	sub := &watchSub{runID: runID, ch: make(chan RunEvent, watchBuffer), done: make(chan struct{})}
	defer h.leave(sub)
	for {
		last, err := s.watchBacklog(ctx, runID, k, from, fn)
		if err != nil {
			return err
		}
		from = last
		sub.last = from // not yet shared with the hub
		if h.join(team, k, sub) {
			break
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sub.done:
			h.mu.Lock()
			err := sub.err
			h.mu.Unlock()
			return err
		case ev := <-sub.ch:
			if err := fn(ev); err != nil {
				return err
			}
		}
	}
}

// watchBacklog calls fn for every entry of stream k after from, reading pages with
// XRANGE (a pooled connection held only per page), and returns the last id seen.
func (s *Store) watchBacklog(ctx context.Context, runID, k string, from streamID, fn func(RunEvent) error) (streamID, error) {
	for {
		msgs, err := s.rdb.XRangeN(ctx, k, "("+from.String(), "+", watchPage).Result()
		if err != nil {
			if ctx.Err() != nil {
				return from, ctx.Err()
			}
			return from, redisErr("read history of run "+runID, err)
		}
		for _, m := range msgs {
			id, ok := parseStreamID(m.ID)
			if !ok {
				continue
			}
			if err := fn(decodeRunEvent(m)); err != nil {
				return from, err
			}
			from = id
		}
		if int64(len(msgs)) < watchPage {
			return from, nil
		}
	}
}

// streamID is a Redis stream entry id, <ms>-<seq>, comparable in stream order.
type streamID struct{ ms, seq uint64 }

// parseStreamID parses "<ms>-<seq>" or "<ms>" (sequence 0, as Redis reads a start id).
func parseStreamID(s string) (streamID, bool) {
	msPart, seqPart, hasSeq := strings.Cut(s, "-")
	ms, err := strconv.ParseUint(msPart, 10, 64)
	if err != nil {
		return streamID{}, false
	}
	var seq uint64
	if hasSeq {
		if seq, err = strconv.ParseUint(seqPart, 10, 64); err != nil {
			return streamID{}, false
		}
	}
	return streamID{ms, seq}, true
}

func (a streamID) less(b streamID) bool {
	return a.ms < b.ms || (a.ms == b.ms && a.seq < b.seq)
}

func (a streamID) String() string {
	return strconv.FormatUint(a.ms, 10) + "-" + strconv.FormatUint(a.seq, 10)
}
