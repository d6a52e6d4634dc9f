package state

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pipefn/pipefn/shared/api"
)

// Token is an API token as stored: never the token itself, only its SHA-256 (hex), the
// team it belongs to and its role. The hash is also the token's id in listings and for
// revocation; it reveals nothing usable, since tokens are high-entropy.
type Token struct {
	Hash      string    `json:"hash"`
	Team      string    `json:"team"`
	Role      string    `json:"role"`
	Name      string    `json:"name,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// tokenIndexKey maps a token hash to its team, so that a bearer token names its team. It
// spans teams, so it is not hash-tagged and only single-key commands touch it.
const tokenIndexKey = "pf:tokens"

// CreateTeam records a team. It reports false when the team was already known (a team is
// also known once it has stored anything).
func (s *Store) CreateTeam(ctx context.Context, team string) (bool, error) {
	if err := checkTeam(team); err != nil {
		return false, err
	}
	n, err := s.rdb.SAdd(ctx, teamsKey, team).Result()
	if err != nil {
		return false, redisErr("create team "+team, err)
	}
	return n == 1, nil
}

// checkHash accepts a lowercase hex SHA-256.
func checkHash(h string) error {
	if len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		return api.Errorf(api.KindInvalid, "token hash: want 64 lowercase hex digits")
	}
	return nil
}

// AddToken stores a token's hash for t.Team. The team must exist (CreateTeam). The global
// index is written first: a crash between the two writes leaves an index entry whose
// record is missing, which LookupToken treats as unknown.
func (s *Store) AddToken(ctx context.Context, t Token) (Token, error) {
	if err := checkTeam(t.Team); err != nil {
		return Token{}, err
	}
	if err := checkHash(t.Hash); err != nil {
		return Token{}, err
	}
	if t.Role == "" {
		return Token{}, api.Errorf(api.KindInvalid, "token for team %s: role is empty", t.Team)
	}
	known, err := s.rdb.SIsMember(ctx, teamsKey, t.Team).Result()
	if err != nil {
		return Token{}, redisErr("add token", err)
	}
	if !known {
		return Token{}, api.Errorf(api.KindNotFound, "team %s not found", t.Team)
	}
	t.CreatedAt = s.now().UTC().Truncate(time.Millisecond)
	ok, err := s.rdb.HSetNX(ctx, tokenIndexKey, t.Hash, t.Team).Result()
	if err != nil {
		return Token{}, redisErr("add token", err)
	}
	if !ok {
		return Token{}, api.Errorf(api.KindConflict, "token already exists")
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key(t.Team, "token", t.Hash), "role", t.Role, "name", t.Name, "created", ms(t.CreatedAt))
		p.SAdd(ctx, key(t.Team, "tokens"), t.Hash)
		return nil
	})
	if err != nil {
		return Token{}, redisErr("add token", err)
	}
	return t, nil
}

// LookupToken finds the token with SHA-256 hash; an unknown or revoked token is NotFound.
func (s *Store) LookupToken(ctx context.Context, hash string) (Token, error) {
	if checkHash(hash) != nil {
		return Token{}, api.Errorf(api.KindNotFound, "token not found")
	}
	team, err := s.rdb.HGet(ctx, tokenIndexKey, hash).Result()
	if errors.Is(err, redis.Nil) {
		return Token{}, api.Errorf(api.KindNotFound, "token not found")
	}
	if err != nil {
		return Token{}, redisErr("look up token", err)
	}
	return s.getToken(ctx, team, hash)
}

func (s *Store) getToken(ctx context.Context, team, hash string) (Token, error) {
	f, err := s.rdb.HGetAll(ctx, key(team, "token", hash)).Result()
	if err != nil {
		return Token{}, redisErr("look up token", err)
	}
	if len(f) == 0 {
		return Token{}, api.Errorf(api.KindNotFound, "token not found")
	}
	return Token{Hash: hash, Team: team, Role: f["role"], Name: f["name"], CreatedAt: fromMS(f["created"])}, nil
}

// ListTokens lists a team's tokens (hashes, roles, names), oldest first.
func (s *Store) ListTokens(ctx context.Context, team string) ([]Token, error) {
	if err := checkTeam(team); err != nil {
		return nil, err
	}
	hs, err := s.rdb.SMembers(ctx, key(team, "tokens")).Result()
	if err != nil {
		return nil, redisErr("list tokens", err)
	}
	out := make([]Token, 0, len(hs))
	for _, h := range hs {
		t, err := s.getToken(ctx, team, h)
		if api.KindOf(err) == api.KindNotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Token) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.Hash, b.Hash)
	})
	return out, nil
}

// RevokeToken deletes a team's token. A token of another team is NotFound, as if it did
// not exist. The team's record goes first so that the token stops working at once.
func (s *Store) RevokeToken(ctx context.Context, team, hash string) error {
	if err := checkTeam(team); err != nil {
		return err
	}
	n, err := s.rdb.Del(ctx, key(team, "token", hash)).Result()
	if err != nil {
		return redisErr("revoke token", err)
	}
	if n == 0 {
		return api.Errorf(api.KindNotFound, "token %.12s... not found in team %s", hash, team)
	}
	if err := s.rdb.SRem(ctx, key(team, "tokens"), hash).Err(); err != nil {
		return redisErr("revoke token", err)
	}
	// Only drop the index entry if it still names this team.
	if owner, err := s.rdb.HGet(ctx, tokenIndexKey, hash).Result(); err == nil && owner == team {
		if err := s.rdb.HDel(ctx, tokenIndexKey, hash).Err(); err != nil {
			return redisErr("revoke token", err)
		}
	}
	return nil
}
