package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pipefn/pipefn/shared/api"
)

// Trigger kinds.
const (
	TriggerGitHub     = "github"     // GitHub webhook (X-Hub-Signature-256)
	TriggerWebhook    = "webhook"    // generic signed webhook (HMAC over timestamp and body)
	TriggerSlack      = "slack"      // chat-ops slash command (Slack signing secret v0)
	TriggerCloudEvent = "cloudevent" // a CloudEvent of a configured type and source
)

// TriggerKinds lists the kinds, in the order documentation shows them.
var TriggerKinds = []string{TriggerGitHub, TriggerWebhook, TriggerSlack, TriggerCloudEvent}

// Trigger says how an outside event starts a run of a team's pipeline. Secret signs the
// webhook kinds; it is write-only: every read returns the trigger without it, except
// TriggerWithSecret, which only the signature check uses.
type Trigger struct {
	TriggerID   string `json:"trigger_id"`
	DisplayName string `json:"display_name,omitempty"`
	Kind        string `json:"kind"`
	// PipelineID (and optionally PipelineVersionID; empty means the latest version) is the
	// pipeline a trigger starts. Slack triggers name the pipeline in each command instead.
	PipelineID        string `json:"pipeline_id,omitempty"`
	PipelineVersionID string `json:"pipeline_version_id,omitempty"`
	ExperimentID      string `json:"experiment_id,omitempty"`
	Backend           string `json:"backend,omitempty"`
	// Parameters maps a run parameter to a dotted path in the trigger's document
	// ("sha", "payload.pull_request.number", "data.image.tag").
	Parameters map[string]string `json:"parameters,omitempty"`
	// Events filters GitHub events (default push and pull_request).
	Events []string `json:"events,omitempty"`
	// EventType and EventSource bind CloudEvents: the type must match exactly; the source
	// matches exactly, by prefix when it ends in "*", or always when empty.
	EventType   string    `json:"event_type,omitempty"`
	EventSource string    `json:"event_source,omitempty"`
	Secret      string    `json:"secret,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// Validate checks a trigger's own fields (not whether its pipeline exists).
func (t Trigger) Validate() error {
	var problems []string
	if !slices.Contains(TriggerKinds, t.Kind) {
		problems = append(problems, fmt.Sprintf("kind %q: want one of %s", t.Kind, strings.Join(TriggerKinds, ", ")))
	}
	needsSecret := t.Kind == TriggerGitHub || t.Kind == TriggerWebhook || t.Kind == TriggerSlack
	if needsSecret && len(t.Secret) < 16 {
		problems = append(problems, "secret: at least 16 characters are required to sign this kind")
	}
	if t.Kind != TriggerSlack && t.PipelineID == "" {
		problems = append(problems, "pipeline_id is required")
	}
	if t.Kind == TriggerCloudEvent && t.EventType == "" {
		problems = append(problems, "event_type is required for a cloudevent trigger")
	}
	if t.Kind != TriggerCloudEvent && (t.EventType != "" || t.EventSource != "") {
		problems = append(problems, "event_type and event_source apply to cloudevent triggers only")
	}
	for _, e := range t.Events {
		if t.Kind != TriggerGitHub {
			problems = append(problems, "events apply to github triggers only")
			break
		}
		if e != "push" && e != "pull_request" {
			problems = append(problems, fmt.Sprintf("events: %q: want push or pull_request", e))
		}
	}
	for p, path := range t.Parameters {
		if p == "" || path == "" {
			problems = append(problems, fmt.Sprintf("parameters[%q]: name and path must be non-empty", p))
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return api.Errorf(api.KindInvalid, "invalid trigger: %s", strings.Join(problems, "; "))
	}
	return nil
}

// MatchesSource reports whether a CloudEvent source matches the trigger's EventSource.
func (t Trigger) MatchesSource(source string) bool {
	switch {
	case t.EventSource == "":
		return true
	case strings.HasSuffix(t.EventSource, "*"):
		return strings.HasPrefix(source, strings.TrimSuffix(t.EventSource, "*"))
	}
	return source == t.EventSource
}

// CreateTrigger validates and stores a trigger with a new id; the answer has no secret.
func (s *Store) CreateTrigger(ctx context.Context, team string, t Trigger) (Trigger, error) {
	if err := checkTeam(team); err != nil {
		return Trigger{}, err
	}
	if err := t.Validate(); err != nil {
		return Trigger{}, err
	}
	t.TriggerID = newID()
	t.CreatedAt = s.now().UTC().Truncate(time.Millisecond)
	secret := t.Secret
	t.Secret = ""
	b, err := json.Marshal(t)
	if err != nil {
		return Trigger{}, err
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key(team, "trigger", t.TriggerID), "json", b, "secret", secret)
		p.ZAdd(ctx, key(team, "triggers"), redis.Z{Member: sortMember(t.CreatedAt, t.TriggerID)})
		p.SAdd(ctx, teamsKey, team)
		return nil
	})
	if err != nil {
		return Trigger{}, redisErr("create trigger", err)
	}
	return t, nil
}

// GetTrigger reads a trigger without its secret. A trigger of another team is NotFound.
func (s *Store) GetTrigger(ctx context.Context, team, id string) (Trigger, error) {
	t, err := s.TriggerWithSecret(ctx, team, id)
	t.Secret = ""
	return t, err
}

// TriggerWithSecret reads a trigger with its secret, for checking a signature. Nothing
// that answers a caller may use it.
func (s *Store) TriggerWithSecret(ctx context.Context, team, id string) (Trigger, error) {
	if err := checkTeam(team); err != nil {
		return Trigger{}, err
	}
	if err := checkID("trigger", id); err != nil {
		return Trigger{}, err
	}
	f, err := s.rdb.HMGet(ctx, key(team, "trigger", id), "json", "secret").Result()
	if err != nil {
		return Trigger{}, redisErr("get trigger "+id, err)
	}
	js, _ := f[0].(string)
	if js == "" {
		return Trigger{}, api.Errorf(api.KindNotFound, "trigger %s not found", id)
	}
	var t Trigger
	if err := json.Unmarshal([]byte(js), &t); err != nil {
		return Trigger{}, fmt.Errorf("trigger %s: stored record: %w", id, err)
	}
	t.Secret, _ = f[1].(string)
	return t, nil
}

// ListTriggers lists a team's triggers, oldest first, without secrets.
func (s *Store) ListTriggers(ctx context.Context, team string) ([]Trigger, error) {
	if err := checkTeam(team); err != nil {
		return nil, err
	}
	ms, err := s.rdb.ZRange(ctx, key(team, "triggers"), 0, -1).Result()
	if err != nil {
		return nil, redisErr("list triggers", err)
	}
	out := make([]Trigger, 0, len(ms))
	for _, m := range ms {
		t, err := s.GetTrigger(ctx, team, idOfMember(m))
		if errors.Is(err, api.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// DeleteTrigger deletes a team's trigger.
func (s *Store) DeleteTrigger(ctx context.Context, team, id string) error {
	t, err := s.GetTrigger(ctx, team, id)
	if err != nil {
		return err
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, key(team, "trigger", id))
		p.ZRem(ctx, key(team, "triggers"), sortMember(t.CreatedAt, id))
		return nil
	})
	return redisErr("delete trigger "+id, err)
}
