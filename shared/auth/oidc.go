package auth

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pipefn/pipefn/shared/api"
)

// Grant is what a claim value maps to: a team and the role in it.
type Grant struct {
	Team string `json:"team"`
	Role Role   `json:"role"`
}

// OIDC verifies RS256 ID tokens from one issuer (Dex, Keycloak, ...) and maps a claim to
// teams. The issuer's keys are fetched once from its JWKS and cached; an unknown key id
// triggers at most one refetch per MinRefresh (keys rotate; a flood of forged kids must
// not turn into a flood of fetches).
type OIDC struct {
	// Issuer must equal the token's iss claim.
	Issuer string
	// Audience, when set, must be among the token's aud claim (the client id).
	Audience string
	// JWKSURL is where the keys are; empty discovers it from
	// Issuer/.well-known/openid-configuration.
	JWKSURL string
	// Claim names the claim that maps to teams (default "groups"); its value may be a
	// string or a list of strings.
	Claim string
	// Teams maps claim values to grants.
	Teams map[string]Grant
	// HTTP fetches discovery and keys (default: a client with a 10s timeout).
	HTTP *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MinRefresh bounds how often keys are refetched (default 1 minute).
	MinRefresh time.Duration

	mu      sync.Mutex
	keys    map[string]*rsa.PublicKey
	fetched time.Time
}

// leeway absorbs clock skew between issuer and us.
const leeway = time.Minute

type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// Authenticate verifies an ID token and maps it to a team. When the claim maps to several
// teams, want (the X-Pipefn-Team header) chooses one of them.
func (o *OIDC) Authenticate(ctx context.Context, token, want string) (Principal, error) {
	claims, err := o.Verify(ctx, token)
	if err != nil {
		return Principal{}, err
	}
	claim := o.Claim
	if claim == "" {
		claim = "groups"
	}
	var values []string
	switch v := claims[claim].(type) {
	case string:
		values = []string{v}
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok {
				values = append(values, s)
			}
		}
	}
	best := map[string]Role{}
	for _, v := range values {
		if g, ok := o.Teams[v]; ok && g.Role > best[g.Team] {
			best[g.Team] = g.Role
		}
	}
	sub, _ := claims["sub"].(string)
	p := Principal{Subject: "oidc:" + sub}
	switch {
	case len(best) == 0:
		return Principal{}, api.Errorf(api.KindPermissionDenied, "ID token of %q: claim %q maps to no team", sub, claim)
	case want != "":
		r, ok := best[want]
		if !ok {
			return Principal{}, api.Errorf(api.KindPermissionDenied, "ID token of %q: not a member of team %q", sub, want)
		}
		p.Team, p.Role = want, r
	case len(best) == 1:
		for t, r := range best {
			p.Team, p.Role = t, r
		}
	default:
		teams := make([]string, 0, len(best))
		for t := range best {
			teams = append(teams, t)
		}
		slices.Sort(teams)
		return Principal{}, api.Errorf(api.KindInvalid, "ID token of %q maps to teams %s: choose one with X-Pipefn-Team", sub, strings.Join(teams, ", "))
	}
	return p, nil
}

// Verify checks an RS256 JWT's signature, issuer, audience and validity window and
// returns its claims.
func (o *OIDC) Verify(ctx context.Context, token string) (map[string]any, error) {
	bad := func(why string) error { return api.Errorf(api.KindUnauthenticated, "ID token rejected: %s", why) }
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, bad("not a JWS compact serialisation")
	}
	var hdr jwtHeader
	if err := decodeSegment(parts[0], &hdr); err != nil {
		return nil, bad("header: " + err.Error())
	}
	if hdr.Alg != "RS256" {
		// Refusing every other alg closes the "none" and HS256-with-public-key holes.
		return nil, bad(fmt.Sprintf("alg %q: only RS256 is accepted", hdr.Alg))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, bad("signature is not base64url")
	}
	key, err := o.key(ctx, hdr.Kid)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, digest[:], sig); err != nil {
		return nil, bad("signature does not verify")
	}
	var claims map[string]any
	if err := decodeSegment(parts[1], &claims); err != nil {
		return nil, bad("claims: " + err.Error())
	}
	if iss, _ := claims["iss"].(string); iss != o.Issuer {
		return nil, bad(fmt.Sprintf("issuer %q is not %q", iss, o.Issuer))
	}
	if o.Audience != "" && !hasAudience(claims["aud"], o.Audience) {
		return nil, bad("audience does not include " + o.Audience)
	}
	now := o.now()
	exp, ok := claims["exp"].(float64)
	if !ok {
		return nil, bad("no exp claim")
	}
	if now.After(time.Unix(int64(exp), 0).Add(leeway)) {
		return nil, bad("expired")
	}
	if nbf, ok := claims["nbf"].(float64); ok && now.Add(leeway).Before(time.Unix(int64(nbf), 0)) {
		return nil, bad("not valid yet")
	}
	return claims, nil
}

func hasAudience(aud any, want string) bool {
	switch v := aud.(type) {
	case string:
		return v == want
	case []any:
		for _, x := range v {
			if s, _ := x.(string); s == want {
				return true
			}
		}
	}
	return false
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return fmt.Errorf("not base64url")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("not JSON")
	}
	return nil
}

func (o *OIDC) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// key returns the issuer's key kid, fetching the JWKS when it is not cached yet, or when
// kid is unknown and the last fetch is older than MinRefresh.
func (o *OIDC) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if k, ok := o.lookup(kid); ok {
		return k, nil
	}
	minRefresh := o.MinRefresh
	if minRefresh == 0 {
		minRefresh = time.Minute
	}
	if o.keys == nil || o.now().Sub(o.fetched) >= minRefresh {
		keys, err := o.fetchKeys(ctx)
		if err != nil {
			// Keep serving the cached keys; say the issuer is unreachable.
			return nil, &api.Error{Kind: api.KindUnavailable, Message: "OIDC issuer keys unavailable", Err: err}
		}
		o.keys, o.fetched = keys, o.now()
		if k, ok := o.lookup(kid); ok {
			return k, nil
		}
	}
	return nil, api.Errorf(api.KindUnauthenticated, "ID token rejected: unknown key id %q", kid)
}

func (o *OIDC) lookup(kid string) (*rsa.PublicKey, bool) {
	if k, ok := o.keys[kid]; ok {
		return k, true
	}
	if kid == "" && len(o.keys) == 1 {
		for _, k := range o.keys {
			return k, true
		}
	}
	return nil, false
}

func (o *OIDC) client() *http.Client {
	if o.HTTP != nil {
		return o.HTTP
	}
	return &http.Client{Timeout: 10 * time.Second}
}

func (o *OIDC) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := o.client().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
}

func (o *OIDC) fetchKeys(ctx context.Context) (map[string]*rsa.PublicKey, error) {
	url := o.JWKSURL
	if url == "" {
		var disc struct {
			JWKSURI string `json:"jwks_uri"`
		}
		if err := o.getJSON(ctx, strings.TrimSuffix(o.Issuer, "/")+"/.well-known/openid-configuration", &disc); err != nil {
			return nil, err
		}
		if disc.JWKSURI == "" {
			return nil, fmt.Errorf("issuer %s: discovery document has no jwks_uri", o.Issuer)
		}
		url = disc.JWKSURI
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := o.getJSON(ctx, url, &set); err != nil {
		return nil, err
	}
	keys := map[string]*rsa.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "RSA" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k.N)
		e, err2 := base64.RawURLEncoding.DecodeString(k.E)
		if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
			continue
		}
		keys[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("JWKS %s: no RSA signing keys", url)
	}
	return keys, nil
}
