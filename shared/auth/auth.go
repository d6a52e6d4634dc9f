// Package auth decides which team a request acts for and whether its role allows it.
//
// A team holds API tokens with a role (viewer, editor, admin). Tokens are high-entropy
// random strings; only their SHA-256 is stored, with a global index from hash to team, so
// a bearer token names its own team. Optionally, OIDC ID tokens (RS256 JWTs from an issuer
// such as Dex) map to teams by a claim. With authentication off (`pipefn up`'s default),
// every request is the one configured team with every right.
//
// The role a request needs follows from its method and path: reads need viewer, writes
// editor, and the management of triggers and tokens admin. Errors never carry a token.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/state"
)

// Role is what a token may do. Higher roles include the lower ones.
type Role int

// Roles, lowest first.
const (
	RoleNone Role = iota
	RoleViewer
	RoleEditor
	RoleAdmin
)

var roleNames = map[Role]string{RoleViewer: "viewer", RoleEditor: "editor", RoleAdmin: "admin"}

func (r Role) String() string {
	if s, ok := roleNames[r]; ok {
		return s
	}
	return fmt.Sprintf("role(%d)", int(r))
}

// ParseRole reads "viewer", "editor" or "admin".
func ParseRole(s string) (Role, error) {
	for r, n := range roleNames {
		if n == s {
			return r, nil
		}
	}
	return RoleNone, api.Errorf(api.KindInvalid, "role %q: want viewer, editor or admin", s)
}

// TokenPrefix starts every pipefn API token, so that they are told from JWTs (and found
// by secret scanners).
const TokenPrefix = "pf_"

// NewToken returns a new random API token (160 bits) and its hash as stored.
func NewToken() (token, hash string) {
	var b [20]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	token = TokenPrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
	return token, HashToken(token)
}

// HashToken is the stored form of a token: hex SHA-256. A fast hash is enough because
// tokens are random and long; there is nothing to brute-force as with passwords.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// Principal is who a request acts as.
type Principal struct {
	Team string
	Role Role
	// Subject names the caller for logs: a token's hash prefix or an OIDC subject.
	Subject string
}

// TokenLookup finds a token by its hash: its team and role name. An unknown token is a
// not-found error.
type TokenLookup func(ctx context.Context, hash string) (team, role string, err error)

// Authenticator authenticates requests. The zero value refuses everything; use Off for a
// single-team install without authentication.
type Authenticator struct {
	// Tokens looks up API tokens; nil accepts none.
	Tokens TokenLookup
	// OIDC verifies OIDC ID tokens; nil accepts none.
	OIDC *OIDC
	// AdminPaths are the path prefixes whose every method needs admin (default: the
	// trigger and token management routes).
	AdminPaths []string
	// Only, when set, is the one team this install serves: a valid credential of another
	// team is refused as unknown (a team's install lives in its own namespace).
	Only string
	// off, when set, is the team of every request, unauthenticated.
	off string
	Log *slog.Logger
}

// DefaultAdminPaths are the routes that manage a team's triggers and tokens.
var DefaultAdminPaths = []string{"/apis/v2beta1/triggers", "/apis/v2beta1/tokens"}

// Off returns an Authenticator that treats every request as team, with every right: the
// mode of `pipefn up` and of a single-team install behind its own gateway.
func Off(team string) *Authenticator { return &Authenticator{off: team} }

// Enabled reports whether requests are authenticated.
func (a *Authenticator) Enabled() bool { return a.off == "" }

// Required is the role a request needs: admin for management paths, viewer for reads,
// editor for everything else.
func (a *Authenticator) Required(r *http.Request) Role {
	paths := a.AdminPaths
	if paths == nil {
		paths = DefaultAdminPaths
	}
	for _, p := range paths {
		if r.URL.Path == p || strings.HasPrefix(r.URL.Path, p+"/") || strings.HasPrefix(r.URL.Path, p+":") {
			return RoleAdmin
		}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return RoleViewer
	}
	return RoleEditor
}

// TeamOf authenticates r and checks that its role allows the request; it returns the team
// the request acts for. Its signature is the TeamOf of every function's handler.
func (a *Authenticator) TeamOf(r *http.Request) (string, error) {
	p, err := a.Authorize(r, a.Required(r))
	return p.Team, err
}

// Authorize authenticates r and checks that its role is at least need.
func (a *Authenticator) Authorize(r *http.Request, need Role) (Principal, error) {
	p, err := a.Authenticate(r)
	if err != nil {
		return Principal{}, err
	}
	if a.Only != "" && p.Team != a.Only {
		return Principal{}, api.Errorf(api.KindUnauthenticated, "the credential is not valid for this install")
	}
	if p.Role < need {
		return Principal{}, api.Errorf(api.KindPermissionDenied, "%s %s needs role %s; the caller's role in team %s is %s",
			r.Method, r.URL.Path, need, p.Team, p.Role)
	}
	return p, nil
}

// Authenticate names the caller of r from its bearer token.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	if a.off != "" {
		return Principal{Team: a.off, Role: RoleAdmin, Subject: "anonymous"}, nil
	}
	token, ok := bearer(r)
	if !ok {
		return Principal{}, api.Errorf(api.KindUnauthenticated, "missing bearer token (Authorization: Bearer <token>)")
	}
	ctx := r.Context()
	if strings.HasPrefix(token, TokenPrefix) {
		return a.apiToken(ctx, token)
	}
	if a.OIDC != nil && strings.Count(token, ".") == 2 {
		return a.OIDC.Authenticate(ctx, token, r.Header.Get("X-Pipefn-Team"))
	}
	return Principal{}, api.Errorf(api.KindUnauthenticated, "bearer token is not a pipefn token or an accepted ID token")
}

func (a *Authenticator) apiToken(ctx context.Context, token string) (Principal, error) {
	if a.Tokens == nil {
		return Principal{}, api.Errorf(api.KindUnauthenticated, "API tokens are not accepted here")
	}
	hash := HashToken(token)
	team, roleName, err := a.Tokens(ctx, hash)
	if err != nil {
		if api.KindOf(err) == api.KindNotFound {
			return Principal{}, api.Errorf(api.KindUnauthenticated, "unknown or revoked token")
		}
		// Redis trouble: keep its kind (unavailable) so that clients retry; the message
		// names no token.
		return Principal{}, err
	}
	role, err := ParseRole(roleName)
	if err != nil {
		return Principal{}, fmt.Errorf("token %.12s... of team %s: stored %w", hash, team, err)
	}
	return Principal{Team: team, Role: role, Subject: "token:" + hash[:12]}, nil
}

// bearer reads "Authorization: Bearer <token>" (scheme case-insensitive, RFC 6750).
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	t := strings.TrimSpace(h[len(scheme):])
	return t, t != ""
}

// TokenStore is what the authenticator needs of the state store.
type TokenStore interface {
	LookupToken(ctx context.Context, hash string) (state.Token, error)
}

// FromStore adapts a store's token lookup to TokenLookup. The stored hash is compared
// with the computed one in constant time, so the final equality check leaks nothing about
// how much of a guess matched.
func FromStore(s TokenStore) TokenLookup {
	return func(ctx context.Context, hash string) (string, string, error) {
		t, err := s.LookupToken(ctx, hash)
		if err != nil {
			return "", "", err
		}
		if subtle.ConstantTimeCompare([]byte(t.Hash), []byte(hash)) != 1 {
			return "", "", api.Errorf(api.KindNotFound, "token not found")
		}
		return t.Team, t.Role, nil
	}
}

// TokenIssuer is what issuing a token needs of the state store.
type TokenIssuer interface {
	AddToken(ctx context.Context, t state.Token) (state.Token, error)
}

// Issue creates a token with role in team and stores its hash. The token itself is
// returned once and kept nowhere.
func Issue(ctx context.Context, s TokenIssuer, team string, role Role, name string) (string, state.Token, error) {
	if role < RoleViewer || role > RoleAdmin {
		return "", state.Token{}, api.Errorf(api.KindInvalid, "role %s: want viewer, editor or admin", role)
	}
	token, hash := NewToken()
	t, err := s.AddToken(ctx, state.Token{Hash: hash, Team: team, Role: role.String(), Name: name})
	if err != nil {
		return "", state.Token{}, err
	}
	return token, t, nil
}

// FromEnv builds a function's authenticator from its environment: PIPEFN_AUTH=off (the
// default: every request is team) or tokens (API tokens from the store, restricted to
// team); with tokens, PIPEFN_OIDC_ISSUER additionally accepts ID tokens, with
// PIPEFN_OIDC_AUDIENCE, PIPEFN_OIDC_CLAIM and PIPEFN_OIDC_TEAMS ("claim=team:role,...").
func FromEnv(getenv func(string) string, team string, tokens TokenStore) (*Authenticator, error) {
	switch mode := getenv("PIPEFN_AUTH"); mode {
	case "", "off":
		return Off(team), nil
	case "tokens":
	default:
		return nil, fmt.Errorf("PIPEFN_AUTH=%q: want off or tokens", mode)
	}
	a := &Authenticator{Tokens: FromStore(tokens), Only: team}
	if iss := getenv("PIPEFN_OIDC_ISSUER"); iss != "" {
		teams, err := ParseGrants(getenv("PIPEFN_OIDC_TEAMS"))
		if err != nil {
			return nil, fmt.Errorf("PIPEFN_OIDC_TEAMS: %w", err)
		}
		a.OIDC = &OIDC{Issuer: iss, Audience: getenv("PIPEFN_OIDC_AUDIENCE"), Claim: getenv("PIPEFN_OIDC_CLAIM"), Teams: teams}
	}
	return a, nil
}

// ParseGrants reads "claim=team:role,..." (e.g. "ml-eng=ml:editor,ml-admins=ml:admin").
func ParseGrants(s string) (map[string]Grant, error) {
	out := map[string]Grant{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		claim, rest, ok1 := strings.Cut(item, "=")
		team, roleName, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || claim == "" || team == "" {
			return nil, fmt.Errorf("%q: want claim=team:role", item)
		}
		role, err := ParseRole(roleName)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", item, err)
		}
		out[claim] = Grant{Team: team, Role: role}
	}
	return out, nil
}
