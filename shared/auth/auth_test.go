package auth

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/redistest"
	"github.com/pipefn/pipefn/shared/state"
)

func TestTokens(t *testing.T) {
	ctx := context.Background()
	st := state.New(redistest.Start(t), nil)
	for _, team := range []string{"red", "blue"} {
		if _, err := st.CreateTeam(ctx, team); err != nil {
			t.Fatal(err)
		}
	}
	tokens := map[string]string{}
	for _, c := range []struct {
		team string
		role Role
	}{{"red", RoleViewer}, {"red", RoleEditor}, {"red", RoleAdmin}, {"blue", RoleAdmin}} {
		tok, rec, err := Issue(ctx, st, c.team, c.role, "test")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(tok, TokenPrefix) || rec.Hash != HashToken(tok) || strings.Contains(rec.Hash, tok) {
			t.Fatalf("Issue: token %q, record %+v", tok, rec)
		}
		tokens[c.team+"/"+c.role.String()] = tok
	}
	a := &Authenticator{Tokens: FromStore(st)}
	for _, tc := range []struct {
		name, token, method, path string
		team                      string
		kind                      api.Kind // KindInternal: allowed
	}{
		{"viewer reads", tokens["red/viewer"], "GET", "/apis/v2beta1/runs", "red", api.KindInternal},
		{"viewer may not write", tokens["red/viewer"], "POST", "/apis/v2beta1/runs", "", api.KindPermissionDenied},
		{"editor writes", tokens["red/editor"], "DELETE", "/apis/v2beta1/pipelines/x", "red", api.KindInternal},
		{"editor may not read triggers", tokens["red/editor"], "GET", "/apis/v2beta1/triggers", "", api.KindPermissionDenied},
		{"editor may not manage tokens", tokens["red/editor"], "POST", "/apis/v2beta1/tokens/x:revoke", "", api.KindPermissionDenied},
		{"admin manages triggers", tokens["red/admin"], "POST", "/apis/v2beta1/triggers", "red", api.KindInternal},
		{"blue's token names blue", tokens["blue/admin"], "GET", "/apis/v2beta1/runs", "blue", api.KindInternal},
		{"no token", "", "GET", "/apis/v2beta1/runs", "", api.KindUnauthenticated},
		{"unknown token", TokenPrefix + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "GET", "/apis/v2beta1/runs", "", api.KindUnauthenticated},
		{"garbage token", "hello", "GET", "/apis/v2beta1/runs", "", api.KindUnauthenticated},
		{"jwt without OIDC", "a.b.c", "GET", "/apis/v2beta1/runs", "", api.KindUnauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.token != "" {
				r.Header.Set("Authorization", "Bearer "+tc.token)
			}
			team, err := a.TeamOf(r)
			if tc.kind == api.KindInternal {
				if err != nil || team != tc.team {
					t.Fatalf("TeamOf = %q, %v; want %q", team, err, tc.team)
				}
				return
			}
			if err == nil || api.KindOf(err) != tc.kind {
				t.Fatalf("TeamOf = %q, %v; want kind %v", team, err, tc.kind)
			}
			if tc.token != "" && strings.Contains(err.Error(), tc.token) {
				t.Errorf("error %q carries the token", err)
			}
		})
	}
	// A revoked token stops working at once.
	if err := st.RevokeToken(ctx, "red", HashToken(tokens["red/admin"])); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/apis/v2beta1/runs", nil)
	r.Header.Set("Authorization", "bearer "+tokens["red/admin"])
	if _, err := a.TeamOf(r); api.KindOf(err) != api.KindUnauthenticated {
		t.Errorf("revoked token: %v", err)
	}
}

func TestOff(t *testing.T) {
	a := Off("solo")
	r := httptest.NewRequest("POST", "/apis/v2beta1/triggers", nil)
	if team, err := a.TeamOf(r); err != nil || team != "solo" {
		t.Errorf("TeamOf = %q, %v", team, err)
	}
	if a.Enabled() {
		t.Error("Off reports authentication enabled")
	}
	if _, err := (&Authenticator{}).TeamOf(r); api.KindOf(err) != api.KindUnauthenticated {
		t.Errorf("zero Authenticator accepted a request: %v", err)
	}
}

func TestParseRole(t *testing.T) {
	for _, r := range []Role{RoleViewer, RoleEditor, RoleAdmin} {
		got, err := ParseRole(r.String())
		if err != nil || got != r {
			t.Errorf("ParseRole(%q) = %v, %v", r, got, err)
		}
	}
	if _, err := ParseRole("root"); api.KindOf(err) != api.KindInvalid {
		t.Errorf("ParseRole(root) = %v", err)
	}
}

func TestFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	a, err := FromEnv(env(nil), "red", nil)
	if err != nil || a.Enabled() {
		t.Fatalf("default: %+v, %v", a, err)
	}
	a, err = FromEnv(env(map[string]string{"PIPEFN_AUTH": "tokens", "PIPEFN_OIDC_ISSUER": "https://dex.example",
		"PIPEFN_OIDC_TEAMS": "ml-eng=red:editor, ops=red:admin"}), "red", nil)
	if err != nil || !a.Enabled() || a.Only != "red" || a.OIDC == nil {
		t.Fatalf("tokens+oidc: %+v, %v", a, err)
	}
	if diff := cmp.Diff(map[string]Grant{"ml-eng": {"red", RoleEditor}, "ops": {"red", RoleAdmin}}, a.OIDC.Teams); diff != "" {
		t.Errorf("grants (-want +got):\n%s", diff)
	}
	for _, bad := range []map[string]string{
		{"PIPEFN_AUTH": "magic"},
		{"PIPEFN_AUTH": "tokens", "PIPEFN_OIDC_ISSUER": "x", "PIPEFN_OIDC_TEAMS": "a=b"},
		{"PIPEFN_AUTH": "tokens", "PIPEFN_OIDC_ISSUER": "x", "PIPEFN_OIDC_TEAMS": "a=b:root"},
	} {
		if _, err := FromEnv(env(bad), "red", nil); err == nil {
			t.Errorf("FromEnv(%v) accepted", bad)
		}
	}
}

func TestOnly(t *testing.T) {
	ctx := context.Background()
	st := state.New(redistest.Start(t), nil)
	st.CreateTeam(ctx, "red")
	st.CreateTeam(ctx, "blue")
	blue, _, err := Issue(ctx, st, "blue", RoleAdmin, "")
	if err != nil {
		t.Fatal(err)
	}
	a := &Authenticator{Tokens: FromStore(st), Only: "red"}
	r := httptest.NewRequest("GET", "/apis/v2beta1/runs", nil)
	r.Header.Set("Authorization", "Bearer "+blue)
	if _, err := a.TeamOf(r); api.KindOf(err) != api.KindUnauthenticated {
		t.Errorf("blue's token on red's install: %v", err)
	}
}
