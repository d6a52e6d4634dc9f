// Package state is pipefn's store on Redis: pipelines, versions, experiments, runs with
// their task details and history, recurring runs and idempotency keys. It is the only
// package that imports go-redis.
//
// Layout. Every key of a team starts with pf:{team}: so that a team lives in one Redis
// Cluster slot and multi-key Lua scripts stay legal; scripts build a team's key names from
// that prefix. Records are JSON (KFP's v2beta1 shapes from shared/api); fields that change
// after creation (state, storage state, history) live beside the JSON in the same hash so
// that scripts update them without re-encoding JSON in Lua. Listings walk sorted sets whose
// members are "<created-ms, zero padded>:<id>" with score 0: lexicographic order is
// creation order with the id breaking ties, and that member is the page cursor, so one page
// costs O(log N + page) and concurrent inserts never shift a page.
package state

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"

	"github.com/pipefn/pipefn/shared/api"
)

// Store keeps pipefn's state in Redis. Every key carries the team in a hash tag
// (pf:{team}:...) so that all of a team's keys land in one Redis Cluster slot and
// multi-key scripts stay legal.
type Store struct {
	rdb redis.UniversalClient
	now func() time.Time

	// streamMaxLen caps each run's history stream (XADD MAXLEN ~).
	streamMaxLen int64
	// idemTTL is how long a run idempotency key is remembered.
	idemTTL time.Duration
	// streamTTL is how long a run's history stream outlives the run's end: long enough for
	// watchers to see the end, short enough that finished runs do not keep ~5 KB streams.
	streamTTL time.Duration

	// hubOnce creates watchHub, which multiplexes every live Watch of this Store over one
	// blocking read (watch.go).
	hubOnce  sync.Once
	watchHub *watchHub
}

// New returns a Store over rdb. now may be nil (time.Now).
func New(rdb redis.UniversalClient, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{rdb: rdb, now: now, streamMaxLen: 1000, idemTTL: 30 * 24 * time.Hour, streamTTL: time.Hour}
}

// key builds pf:{team}:part1:part2...
func key(team string, parts ...string) string {
	return "pf:{" + team + "}:" + strings.Join(parts, ":")
}

// prefix is what scripts prepend to build a team's keys; it equals key(team, "").
func prefix(team string) string { return "pf:{" + team + "}:" }

// teamsKey is the set of known teams. It is not hash-tagged: it spans teams, and is only
// touched by single-key commands.
const teamsKey = "pf:teams"

// checkTeam rejects team names that would break the key layout (a "}" ends the hash tag)
// or the Kubernetes namespace a team maps to: DNS-1123 labels only.
func checkTeam(team string) error {
	if team == "" || len(team) > 63 {
		return api.Errorf(api.KindInvalid, "team %q: must be 1 to 63 characters", team)
	}
	for i, r := range team {
		ok := (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || (r == '-' && i > 0 && i < len(team)-1)
		if !ok {
			return api.Errorf(api.KindInvalid, "team %q: only lowercase letters, digits and inner '-' are allowed", team)
		}
	}
	return nil
}

// checkID rejects ids that are empty, long, or carry characters that would make key
// names ambiguous.
func checkID(kind, id string) error {
	if id == "" {
		return api.Errorf(api.KindInvalid, "%s id is empty", kind)
	}
	if len(id) > 128 {
		return api.Errorf(api.KindInvalid, "%s id %.20q...: longer than 128 characters", kind, id)
	}
	for _, r := range id {
		if r == ':' || r == '{' || r == '}' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return api.Errorf(api.KindInvalid, "%s id %q: must not contain ':', braces, spaces or control characters", kind, id)
		}
	}
	return nil
}

// newID returns a random RFC 4122 version 4 UUID, the id shape KFP uses.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// sortMember is the index member of a record: creation time in ms, zero padded so that
// lexicographic order is time order, then the id to break ties.
func sortMember(created time.Time, id string) string {
	return fmt.Sprintf("%016d:%s", created.UnixMilli(), id)
}

// idOfMember returns the id part of a sortMember.
func idOfMember(m string) string {
	if len(m) > 17 && m[16] == ':' {
		return m[17:]
	}
	return m
}

// ms formats t as Unix milliseconds, the time format stored in hashes and streams.
func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// fromMS parses a Unix-milliseconds field; "" is the zero time.
func fromMS(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// redisErr names the operation in a Redis failure and classifies it: connection trouble
// and a server that is loading, read-only or failing over are unavailable (transient:
// callers and event handlers retry them); any other error reply means a defect here (a
// script error, a wrong key type), which retrying cannot fix, so it stays internal.
func redisErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		return err
	}
	wrapped := fmt.Errorf("%s: %w", op, err)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return wrapped
	}
	var reply redis.Error
	if errors.As(err, &reply) && !transientReply(reply.Error()) {
		return wrapped
	}
	return &api.Error{Kind: api.KindUnavailable, Message: op + ": state store unavailable", Err: wrapped}
}

// transientReply reports whether a Redis error reply is one a retry can outlive.
func transientReply(msg string) bool {
	for _, p := range []string{"LOADING", "READONLY", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "BUSY ", "NOREPLICAS"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// addTeam records team in the set of known teams (for the scheduler's tick fan-out).
func (s *Store) addTeam(ctx context.Context, team string) error {
	return redisErr("record team "+team, s.rdb.SAdd(ctx, teamsKey, team).Err())
}

// Teams lists every team that has stored anything, sorted.
func (s *Store) Teams(ctx context.Context) ([]string, error) {
	ts, err := s.rdb.SMembers(ctx, teamsKey).Result()
	if err != nil {
		return nil, redisErr("list teams", err)
	}
	slices.Sort(ts)
	return ts, nil
}

// SeenEvent records an event id for ttl and reports whether this is its first sighting
// (SET NX EX), so that at-least-once deliveries are handled once across replicas.
func (s *Store) SeenEvent(ctx context.Context, team, eventID string, ttl time.Duration) (bool, error) {
	if err := checkTeam(team); err != nil {
		return false, err
	}
	if eventID == "" {
		return false, api.Errorf(api.KindInvalid, "event id is empty")
	}
	if ttl <= 0 {
		return false, api.Errorf(api.KindInvalid, "dedupe ttl %v: must be positive", ttl)
	}
	ok, err := s.rdb.SetNX(ctx, key(team, "seen", eventID), "1", ttl).Result()
	if err != nil {
		return false, redisErr("dedupe event "+eventID, err)
	}
	return ok, nil
}

// ForgetEvent drops an event id recorded by SeenEvent, so that a redelivery after a
// failed attempt is handled again.
func (s *Store) ForgetEvent(ctx context.Context, team, eventID string) error {
	if err := checkTeam(team); err != nil {
		return err
	}
	return redisErr("forget event "+eventID, s.rdb.Del(ctx, key(team, "seen", eventID)).Err())
}

// ListOptions page through a listing. PageToken is opaque: pass back NextPageToken.
type ListOptions struct {
	// PageSize is 1..1000; 0 means 20.
	PageSize  int
	PageToken string
	// SortBy is "created_at" optionally followed by "asc" or "desc" (KFP's syntax); ""
	// picks the listing's default order.
	SortBy string
}

const (
	defaultPageSize = 20
	maxPageSize     = 1000
)

// pageSpec is a validated ListOptions.
type pageSpec struct {
	size   int
	desc   bool
	cursor string // sort member of the last item returned; "" for the first page
}

// parseList validates opts. scope names the listing and its filters: a token minted for
// one listing is refused by another, so a client cannot splice two orders or filters.
func parseList(opts ListOptions, defaultDesc bool, scope string) (pageSpec, error) {
	p := pageSpec{size: opts.PageSize, desc: defaultDesc}
	if p.size == 0 {
		p.size = defaultPageSize
	}
	if p.size < 0 || p.size > maxPageSize {
		return p, api.Errorf(api.KindInvalid, "page_size %d: must be between 1 and %d", opts.PageSize, maxPageSize)
	}
	switch f := strings.Fields(strings.ToLower(opts.SortBy)); {
	case len(f) == 0:
	case f[0] != "created_at" || len(f) > 2:
		return p, api.Errorf(api.KindInvalid, "sort_by %q: only \"created_at [asc|desc]\" is supported", opts.SortBy)
	case len(f) == 1 || f[1] == "asc":
		p.desc = false
	case f[1] == "desc":
		p.desc = true
	default:
		return p, api.Errorf(api.KindInvalid, "sort_by %q: order must be asc or desc", opts.SortBy)
	}
	if opts.PageToken != "" {
		raw, err := base64.RawURLEncoding.DecodeString(opts.PageToken)
		if err != nil {
			return p, api.Errorf(api.KindInvalid, "page_token: not a token from this API")
		}
		parts := strings.SplitN(string(raw), "\n", 3)
		if len(parts) != 3 || parts[0] != scope || parts[1] != orderName(p.desc) || parts[2] == "" {
			return p, api.Errorf(api.KindInvalid, "page_token: minted for another listing, filter or sort order")
		}
		p.cursor = parts[2]
	}
	return p, nil
}

func orderName(desc bool) string {
	if desc {
		return "desc"
	}
	return "asc"
}

// token mints the opaque next-page token after member.
func (p pageSpec) token(scope, member string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(scope + "\n" + orderName(p.desc) + "\n" + member))
}

// rangeArgs is the ZRANGE BYLEX of the page after the cursor, one extra item to know
// whether another page exists.
func (p pageSpec) rangeArgs(k string, extra int) redis.ZRangeArgs {
	a := redis.ZRangeArgs{Key: k, ByLex: true, Rev: p.desc, Count: int64(p.size + extra)}
	lo, hi := "-", "+"
	if p.cursor != "" {
		if p.desc {
			hi = "(" + p.cursor
		} else {
			lo = "(" + p.cursor
		}
	}
	if p.desc {
		a.Start, a.Stop = hi, lo
	} else {
		a.Start, a.Stop = lo, hi
	}
	return a
}

// listIndex returns the ids of one page of the lex index k and the next token.
func (s *Store) listIndex(ctx context.Context, k, scope string, p pageSpec) ([]string, string, error) {
	members, err := s.rdb.ZRangeArgs(ctx, p.rangeArgs(k, 1)).Result()
	if err != nil {
		return nil, "", redisErr("list "+scope, err)
	}
	next := ""
	if len(members) > p.size {
		members = members[:p.size]
		next = p.token(scope, members[len(members)-1])
	}
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = idOfMember(m)
	}
	return ids, next, nil
}
