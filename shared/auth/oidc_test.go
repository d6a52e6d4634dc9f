package auth

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipefn/pipefn/shared/api"
)

type issuer struct {
	srv     *httptest.Server
	key     *rsa.PrivateKey
	kid     string
	fetches atomic.Int32
}

func newIssuer(t *testing.T) *issuer {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &issuer{key: key, kid: "k1"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": iss.srv.URL, "jwks_uri": iss.srv.URL + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		iss.fetches.Add(1)
		json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "use": "sig", "alg": "RS256", "kid": iss.kid,
			"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
		}}})
	})
	iss.srv = httptest.NewServer(mux)
	t.Cleanup(iss.srv.Close)
	return iss
}

func (i *issuer) sign(t *testing.T, hdr map[string]string, claims map[string]any, key *rsa.PrivateKey) string {
	h, _ := json.Marshal(hdr)
	c, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	d := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestOIDC(t *testing.T) {
	iss := newIssuer(t)
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	o := &OIDC{Issuer: iss.srv.URL, Audience: "pipefn", Claim: "groups", Now: func() time.Time { return now },
		Teams: map[string]Grant{"ml-eng": {"ml", RoleEditor}, "ml-admins": {"ml", RoleAdmin}, "data": {"data", RoleViewer}}}
	a := &Authenticator{OIDC: o}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	rs := map[string]string{"alg": "RS256", "kid": "k1"}
	claims := func(groups any, mod ...func(map[string]any)) map[string]any {
		c := map[string]any{"iss": iss.srv.URL, "aud": []string{"pipefn"}, "sub": "alice", "groups": groups,
			"exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix()}
		for _, m := range mod {
			m(c)
		}
		return c
	}
	for _, tc := range []struct {
		name   string
		token  string
		header string
		team   string
		role   Role
		kind   api.Kind
	}{
		{"editor", iss.sign(t, rs, claims([]string{"ml-eng"}), iss.key), "", "ml", RoleEditor, 0},
		{"highest role wins", iss.sign(t, rs, claims([]string{"ml-eng", "ml-admins"}), iss.key), "", "ml", RoleAdmin, 0},
		{"string claim", iss.sign(t, rs, claims("data"), iss.key), "", "data", RoleViewer, 0},
		{"two teams need a choice", iss.sign(t, rs, claims([]string{"ml-eng", "data"}), iss.key), "", "", 0, api.KindInvalid},
		{"chosen team", iss.sign(t, rs, claims([]string{"ml-eng", "data"}), iss.key), "data", "data", RoleViewer, 0},
		{"chosen team not a member", iss.sign(t, rs, claims([]string{"ml-eng"}), iss.key), "data", "", 0, api.KindPermissionDenied},
		{"no team", iss.sign(t, rs, claims([]string{"sales"}), iss.key), "", "", 0, api.KindPermissionDenied},
		{"forged signature", iss.sign(t, rs, claims([]string{"ml-eng"}), other), "", "", 0, api.KindUnauthenticated},
		{"expired", iss.sign(t, rs, claims([]string{"ml-eng"}, func(c map[string]any) { c["exp"] = now.Add(-2 * time.Minute).Unix() }), iss.key), "", "", 0, api.KindUnauthenticated},
		{"not yet valid", iss.sign(t, rs, claims([]string{"ml-eng"}, func(c map[string]any) { c["nbf"] = now.Add(5 * time.Minute).Unix() }), iss.key), "", "", 0, api.KindUnauthenticated},
		{"wrong issuer", iss.sign(t, rs, claims([]string{"ml-eng"}, func(c map[string]any) { c["iss"] = "https://evil" }), iss.key), "", "", 0, api.KindUnauthenticated},
		{"wrong audience", iss.sign(t, rs, claims([]string{"ml-eng"}, func(c map[string]any) { c["aud"] = "other" }), iss.key), "", "", 0, api.KindUnauthenticated},
		{"alg none", iss.sign(t, map[string]string{"alg": "none", "kid": "k1"}, claims([]string{"ml-eng"}), iss.key), "", "", 0, api.KindUnauthenticated},
		{"unknown kid", iss.sign(t, map[string]string{"alg": "RS256", "kid": "k9"}, claims([]string{"ml-eng"}), iss.key), "", "", 0, api.KindUnauthenticated},
		{"garbage", "x.y.z", "", "", 0, api.KindUnauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/apis/v2beta1/runs", nil)
			r.Header.Set("Authorization", "Bearer "+tc.token)
			if tc.header != "" {
				r.Header.Set("X-Pipefn-Team", tc.header)
			}
			p, err := a.Authenticate(r)
			if tc.kind != 0 {
				if api.KindOf(err) != tc.kind {
					t.Fatalf("Authenticate = %+v, %v; want kind %v", p, err, tc.kind)
				}
				return
			}
			if err != nil || p.Team != tc.team || p.Role != tc.role || p.Subject != "oidc:alice" {
				t.Fatalf("Authenticate = %+v, %v; want %s/%s", p, err, tc.team, tc.role)
			}
		})
	}
	// Keys are fetched once, and an unknown kid refetches at most once per MinRefresh.
	if n := iss.fetches.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times, want 1", n)
	}
	now = now.Add(2 * time.Minute)
	if _, err := o.Verify(context.Background(), iss.sign(t, map[string]string{"alg": "RS256", "kid": "k9"}, claims(nil), iss.key)); err == nil {
		t.Fatal("unknown kid accepted")
	}
	if n := iss.fetches.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times after the refresh interval, want 2", n)
	}
}
