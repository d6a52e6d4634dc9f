package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/api"
)

func hashOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestTokens(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if _, err := s.AddToken(ctx, Token{Hash: hashOf("a"), Team: "red", Role: "admin"}); api.KindOf(err) != api.KindNotFound {
		t.Fatalf("token for an unknown team: got %v, want NotFound", err)
	}
	for _, team := range []string{"red", "blue"} {
		created, err := s.CreateTeam(ctx, team)
		if err != nil || !created {
			t.Fatalf("CreateTeam(%s) = %v, %v", team, created, err)
		}
	}
	if created, err := s.CreateTeam(ctx, "red"); err != nil || created {
		t.Fatalf("CreateTeam(red) again = %v, %v; want false, nil", created, err)
	}
	if _, err := s.CreateTeam(ctx, "Bad}"); api.KindOf(err) != api.KindInvalid {
		t.Fatalf("CreateTeam(Bad}) = %v, want Invalid", err)
	}
	red1, err := s.AddToken(ctx, Token{Hash: hashOf("r1"), Team: "red", Role: "admin", Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddToken(ctx, Token{Hash: hashOf("b1"), Team: "blue", Role: "viewer"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddToken(ctx, Token{Hash: hashOf("r1"), Team: "blue", Role: "admin"}); api.KindOf(err) != api.KindConflict {
		t.Fatalf("same hash in another team: got %v, want Conflict", err)
	}
	if _, err := s.AddToken(ctx, Token{Hash: "nothex", Team: "red", Role: "admin"}); api.KindOf(err) != api.KindInvalid {
		t.Fatalf("bad hash: got %v, want Invalid", err)
	}
	got, err := s.LookupToken(ctx, hashOf("r1"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(red1, got); diff != "" {
		t.Errorf("LookupToken (-want +got):\n%s", diff)
	}
	if _, err := s.LookupToken(ctx, hashOf("nope")); api.KindOf(err) != api.KindNotFound {
		t.Errorf("unknown token: got %v", err)
	}
	list, err := s.ListTokens(ctx, "blue")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Hash != hashOf("b1") || list[0].Role != "viewer" {
		t.Errorf("ListTokens(blue) = %+v", list)
	}
	// Another team cannot revoke red's token, and it keeps working.
	if err := s.RevokeToken(ctx, "blue", hashOf("r1")); api.KindOf(err) != api.KindNotFound {
		t.Errorf("blue revoking red's token: got %v, want NotFound", err)
	}
	if _, err := s.LookupToken(ctx, hashOf("r1")); err != nil {
		t.Errorf("red's token after blue's attempt: %v", err)
	}
	if err := s.RevokeToken(ctx, "red", hashOf("r1")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupToken(ctx, hashOf("r1")); api.KindOf(err) != api.KindNotFound {
		t.Errorf("revoked token: got %v, want NotFound", err)
	}
}
