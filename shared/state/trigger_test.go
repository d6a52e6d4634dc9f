package state

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/api"
)

func TestTriggerValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Trigger
		want []string // substrings of the error; none means valid
	}{
		{"github", Trigger{Kind: TriggerGitHub, PipelineID: "p", Secret: "0123456789abcdef"}, nil},
		{"slack without pipeline", Trigger{Kind: TriggerSlack, Secret: "0123456789abcdef"}, nil},
		{"cloudevent", Trigger{Kind: TriggerCloudEvent, PipelineID: "p", EventType: "com.example.built"}, nil},
		{"unknown kind", Trigger{Kind: "ftp"}, []string{`kind "ftp"`}},
		{"short secret", Trigger{Kind: TriggerWebhook, PipelineID: "p", Secret: "short"}, []string{"secret"}},
		{"no pipeline, bad events", Trigger{Kind: TriggerGitHub, Secret: "0123456789abcdef", Events: []string{"issues"}},
			[]string{"pipeline_id is required", `"issues"`}},
		{"cloudevent without type", Trigger{Kind: TriggerCloudEvent, PipelineID: "p"}, []string{"event_type is required"}},
		{"event type on a webhook", Trigger{Kind: TriggerWebhook, PipelineID: "p", Secret: "0123456789abcdef", EventType: "x"},
			[]string{"cloudevent triggers only"}},
		{"empty path", Trigger{Kind: TriggerCloudEvent, PipelineID: "p", EventType: "x", Parameters: map[string]string{"a": ""}},
			[]string{`parameters["a"]`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.in.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if api.KindOf(err) != api.KindInvalid {
				t.Fatalf("Validate = %v, want Invalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestTriggerSource(t *testing.T) {
	for _, tc := range []struct {
		pattern, source string
		want            bool
	}{
		{"", "anything", true},
		{"https://github.com/acme/repo", "https://github.com/acme/repo", true},
		{"https://github.com/acme/repo", "https://github.com/acme/other", false},
		{"https://github.com/acme/*", "https://github.com/acme/other", true},
		{"https://github.com/acme/*", "https://github.com/evil/acme", false},
	} {
		if got := (Trigger{EventSource: tc.pattern}).MatchesSource(tc.source); got != tc.want {
			t.Errorf("MatchesSource(%q, %q) = %v, want %v", tc.pattern, tc.source, got, tc.want)
		}
	}
}

func TestTriggers(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	in := Trigger{Kind: TriggerGitHub, PipelineID: "p1", Secret: "it-is-a-secret-0123", Parameters: map[string]string{"sha": "sha"}}
	created, err := s.CreateTrigger(ctx, "red", in)
	if err != nil {
		t.Fatal(err)
	}
	if created.Secret != "" || created.TriggerID == "" {
		t.Fatalf("CreateTrigger answer: %+v (want an id and no secret)", created)
	}
	got, err := s.GetTrigger(ctx, "red", created.TriggerID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(created, got); diff != "" {
		t.Errorf("GetTrigger (-want +got):\n%s", diff)
	}
	withSecret, err := s.TriggerWithSecret(ctx, "red", created.TriggerID)
	if err != nil || withSecret.Secret != in.Secret {
		t.Errorf("TriggerWithSecret = %q, %v", withSecret.Secret, err)
	}
	list, err := s.ListTriggers(ctx, "red")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Trigger{created}, list); diff != "" {
		t.Errorf("ListTriggers (-want +got):\n%s", diff)
	}
	// Another team sees nothing of it.
	if _, err := s.GetTrigger(ctx, "blue", created.TriggerID); api.KindOf(err) != api.KindNotFound {
		t.Errorf("blue reading red's trigger: %v", err)
	}
	if err := s.DeleteTrigger(ctx, "blue", created.TriggerID); api.KindOf(err) != api.KindNotFound {
		t.Errorf("blue deleting red's trigger: %v", err)
	}
	if l, _ := s.ListTriggers(ctx, "blue"); len(l) != 0 {
		t.Errorf("blue's list: %+v", l)
	}
	if err := s.DeleteTrigger(ctx, "red", created.TriggerID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetTrigger(ctx, "red", created.TriggerID); api.KindOf(err) != api.KindNotFound {
		t.Errorf("deleted trigger: %v", err)
	}
	if _, err := s.CreateTrigger(ctx, "red", Trigger{Kind: "nope"}); api.KindOf(err) != api.KindInvalid {
		t.Errorf("invalid trigger stored: %v", err)
	}
}
