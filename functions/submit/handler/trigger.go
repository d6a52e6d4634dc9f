package handler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/rest"
	"github.com/pipefn/pipefn/shared/state"
)

// TriggerStore is what triggers need of the state store beyond the submit handler's.
type TriggerStore interface {
	CreateTrigger(ctx context.Context, team string, t state.Trigger) (state.Trigger, error)
	GetTrigger(ctx context.Context, team, id string) (state.Trigger, error)
	TriggerWithSecret(ctx context.Context, team, id string) (state.Trigger, error)
	ListTriggers(ctx context.Context, team string) ([]state.Trigger, error)
	DeleteTrigger(ctx context.Context, team, id string) error
	ListRuns(ctx context.Context, team string, opts state.ListOptions, f state.RunFilter) ([]api.Run, string, error)
	ListRecurringRuns(ctx context.Context, team string, opts state.ListOptions) ([]api.RecurringRun, string, error)
}

// Triggers starts runs from outside events: signed webhooks (GitHub, generic), chat-ops
// slash commands and CloudEvents bound to pipelines. Every webhook is verified before
// anything of its body is used, answered at once, and submitted afterwards through
// Handler.SubmitRun with an idempotency key derived from the delivery, so that a
// redelivered or replayed request creates nothing new.
type Triggers struct {
	// Submit starts runs (SubmitRun) and cancels them.
	Submit *Handler
	Store  TriggerStore
	// TeamOf authenticates the trigger management routes (admin).
	TeamOf func(r *http.Request) (string, error)
	// Team, when set, is the one team this install serves: hooks addressed to another team
	// are refused, and a CloudEvent without the pfteam attribute is this team's.
	Team string
	// MaxBody bounds a webhook body (default 1 MiB).
	MaxBody int64
	// Window is how far a signed timestamp may be from now (default 5 minutes).
	Window time.Duration
	// AllowResponseURL says where chat-ops may post delayed answers (default: Slack's
	// https://hooks.slack.com/). It keeps a signed-but-hostile body from making pipefn
	// post to arbitrary addresses.
	AllowResponseURL func(url string) bool
	// HTTP posts chat-ops answers (default: 5s timeout).
	HTTP *http.Client
	Now  func() time.Time
	Log  *slog.Logger

	wg sync.WaitGroup
}

// HookPath is where a trigger's webhook is served.
func HookPath(team, triggerID string) string { return "/hooks/" + team + "/" + triggerID }

// Routes mounts trigger management (admin) and the webhook entry on mux.
func (t *Triggers) Routes(mux *http.ServeMux) {
	const p = "/apis/v2beta1/triggers"
	mux.HandleFunc("POST "+p, t.team(t.create))
	mux.HandleFunc("GET "+p, t.team(t.list))
	mux.HandleFunc("GET "+p+"/{id}", t.team(t.get))
	mux.HandleFunc("DELETE "+p+"/{id}", t.team(t.delete))
	mux.HandleFunc("POST /hooks/{team}/{id}", t.hook)
	if ts, ok := t.Store.(TokenStore); ok {
		t.tokenRoutes(mux, ts)
	}
	if t.Team != "" {
		// A single-team install receives bound CloudEvents from its namespace's Broker
		// here. A multi-team server (pipefn up with authentication) routes them through
		// its own bus instead, where the sender's token has set the team.
		r := events.NewRouter(t.Log)
		r.HandlePrefix("", t.Event)
		mux.Handle("POST /bindings", events.HTTPHandler(r))
	}
}

// Wait blocks until every submission started by a webhook has finished, or ctx ends (a
// function's drain on SIGTERM).
func (t *Triggers) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *Triggers) team(fn rest.TeamHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		team, err := t.TeamOf(r)
		if err != nil {
			rest.WriteError(w, r, t.log(), err)
			return
		}
		if err := fn(w, r, team); err != nil {
			rest.WriteError(w, r, t.log(), err)
		}
	}
}

func (t *Triggers) log() *slog.Logger {
	if t.Log != nil {
		return t.Log
	}
	return slog.Default()
}

func (t *Triggers) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// TriggerAnswer is a stored trigger as the API shows it: never the secret, and the path
// its webhook is served at.
type TriggerAnswer struct {
	state.Trigger
	WebhookPath string `json:"webhook_path,omitempty"`
}

func answer(team string, tr state.Trigger) TriggerAnswer {
	tr.Secret = ""
	a := TriggerAnswer{Trigger: tr}
	if tr.Kind != state.TriggerCloudEvent {
		a.WebhookPath = HookPath(team, tr.TriggerID)
	}
	return a
}

func (t *Triggers) create(w http.ResponseWriter, r *http.Request, team string) error {
	var in state.Trigger
	if err := rest.DecodeJSON(w, r, 0, &in); err != nil {
		return err
	}
	if in.TriggerID != "" {
		return api.Errorf(api.KindInvalid, "invalid trigger: trigger_id is set by the server")
	}
	if err := in.Validate(); err != nil {
		return err
	}
	if in.PipelineID != "" {
		// The pipeline must be the caller's own: another team's id is simply not found.
		if in.PipelineVersionID != "" {
			if _, err := t.Submit.Store.GetPipelineVersion(r.Context(), team, in.PipelineID, in.PipelineVersionID); err != nil {
				return err
			}
		} else if _, err := t.Submit.Store.GetPipeline(r.Context(), team, in.PipelineID); err != nil {
			return err
		}
	}
	tr, err := t.Store.CreateTrigger(r.Context(), team, in)
	if err != nil {
		return err
	}
	rest.WriteJSON(w, http.StatusOK, answer(team, tr))
	return nil
}

func (t *Triggers) list(w http.ResponseWriter, r *http.Request, team string) error {
	trs, err := t.Store.ListTriggers(r.Context(), team)
	if err != nil {
		return err
	}
	out := make([]TriggerAnswer, 0, len(trs))
	for _, tr := range trs {
		out = append(out, answer(team, tr))
	}
	rest.WriteJSON(w, http.StatusOK, rest.ListBody("triggers", out, len(out), ""))
	return nil
}

func (t *Triggers) get(w http.ResponseWriter, r *http.Request, team string) error {
	tr, err := t.Store.GetTrigger(r.Context(), team, r.PathValue("id"))
	if err != nil {
		return err
	}
	rest.WriteJSON(w, http.StatusOK, answer(team, tr))
	return nil
}

func (t *Triggers) delete(w http.ResponseWriter, r *http.Request, team string) error {
	if err := t.Store.DeleteTrigger(r.Context(), team, r.PathValue("id")); err != nil {
		return err
	}
	rest.WriteJSON(w, http.StatusOK, struct{}{})
	return nil
}

// errBadSignature is every webhook authentication failure, alike: an unknown team or
// trigger looks exactly like a wrong signature, so that ids do not leak.
var errBadSignature = api.Errorf(api.KindUnauthenticated, "webhook signature does not verify")

// hook is the webhook entry: look up the trigger's secret, read the size-limited body,
// verify the signature (401 at once, nothing recorded), then hand over to the kind.
func (t *Triggers) hook(w http.ResponseWriter, r *http.Request) {
	team, id := r.PathValue("team"), r.PathValue("id")
	if t.Team != "" && team != t.Team {
		rest.WriteError(w, r, t.log(), errBadSignature)
		return
	}
	tr, err := t.Store.TriggerWithSecret(r.Context(), team, id)
	if err != nil {
		if k := api.KindOf(err); k == api.KindNotFound || k == api.KindInvalid {
			err = errBadSignature
		}
		rest.WriteError(w, r, t.log(), err)
		return
	}
	body, err := readLimited(r.Body, t.maxBody())
	if err != nil {
		rest.WriteError(w, r, t.log(), err)
		return
	}
	switch tr.Kind {
	case state.TriggerGitHub:
		err = t.github(w, r, team, tr, body)
	case state.TriggerWebhook:
		err = t.generic(w, r, team, tr, body)
	case state.TriggerSlack:
		err = t.slack(w, r, team, tr, body)
	default:
		err = errBadSignature // a CloudEvent binding has no webhook
	}
	if err != nil {
		rest.WriteError(w, r, t.log(), err)
	}
}

func (t *Triggers) maxBody() int64 {
	if t.MaxBody > 0 {
		return t.MaxBody
	}
	return 1 << 20
}

func (t *Triggers) window() time.Duration {
	if t.Window > 0 {
		return t.Window
	}
	return 5 * time.Minute
}

// readLimited reads at most limit bytes; more is KindTooLarge.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, api.Errorf(api.KindInvalid, "reading the request body: %v", err)
	}
	if int64(len(b)) > limit {
		return nil, api.Errorf(api.KindTooLarge, "request body is larger than %d bytes", limit)
	}
	return b, nil
}

// idemKey derives a bounded idempotency key from the parts that identify a delivery.
func idemKey(kind string, parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return kind + ":" + hex.EncodeToString(h[:16])
}

// runFor builds the run a trigger starts from its document.
func runFor(tr state.Trigger, name string, doc any) (api.Run, []string) {
	params := map[string]any{}
	var missing []string
	for p, path := range tr.Parameters {
		v, ok := Lookup(doc, path)
		if !ok {
			missing = append(missing, p+"<-"+path)
			continue
		}
		params[p] = v
	}
	run := api.Run{
		DisplayName:  name,
		ExperimentID: tr.ExperimentID,
		Backend:      tr.Backend,
		PipelineVersionReference: &api.PipelineVersionReference{
			PipelineID: tr.PipelineID, PipelineVersionID: tr.PipelineVersionID,
		},
	}
	if len(params) > 0 {
		run.RuntimeConfig = &api.RuntimeConfig{Parameters: params}
	}
	return run, missing
}

// Lookup follows a dotted path ("payload.pull_request.head.sha", "items.0.name") through
// decoded JSON. Objects are indexed by key, arrays by decimal index.
func Lookup(doc any, path string) (any, bool) {
	cur := doc
	for _, seg := range strings.Split(path, ".") {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[seg]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, cur != nil
}

// submitLater submits run after the response has gone out. The work is bounded and
// detached from the request, and tracked so that a draining function finishes it. then,
// if set, receives the outcome.
func (t *Triggers) submitLater(team string, run api.Run, key string, then func(api.Run, error)) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		stored, err := t.Submit.SubmitRun(ctx, team, run, key)
		if err != nil {
			t.log().Warn("trigger submission failed", "team", team, "idempotency_key", key, "err", err)
		} else {
			t.log().Info("trigger submitted a run", "team", team, "run", stored.RunID, "idempotency_key", key)
		}
		if then != nil {
			then(stored, err)
		}
	}()
}

// Event starts the runs bound to a CloudEvent's type and source: every cloudevent trigger
// of the event's team whose type matches and whose source pattern matches. It is an
// events.Handler; an event no binding matches is a permanent error (no redelivery).
func (t *Triggers) Event(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
	team, _ := e.Extensions()[events.ExtTeam].(string)
	switch {
	case team == "" && t.Team != "":
		team = t.Team
	case team == "":
		return nil, events.Permanent(fmt.Errorf("event %s (%s): no %s attribute names its team", e.ID(), e.Type(), events.ExtTeam))
	case t.Team != "" && team != t.Team:
		return nil, events.Permanent(fmt.Errorf("event %s (%s): team %q is not this install's", e.ID(), e.Type(), team))
	}
	trs, err := t.Store.ListTriggers(ctx, team)
	if err != nil {
		if api.KindOf(err) == api.KindInvalid {
			return nil, events.Permanent(err)
		}
		return nil, err
	}
	doc := map[string]any{"id": e.ID(), "type": e.Type(), "source": e.Source(), "subject": e.Subject()}
	if len(e.Data()) > 0 {
		var data any
		if json.Unmarshal(e.Data(), &data) == nil {
			doc["data"] = data
		} else {
			doc["data"] = string(e.Data())
		}
	}
	matched := 0
	var errs []error
	for _, tr := range trs {
		if tr.Kind != state.TriggerCloudEvent || tr.EventType != e.Type() || !tr.MatchesSource(e.Source()) {
			continue
		}
		matched++
		run, missing := runFor(tr, firstNonEmpty(tr.DisplayName, e.Type())+" "+e.ID(), doc)
		if len(missing) > 0 {
			t.log().Info("binding parameters missing from the event", "trigger", tr.TriggerID, "missing", missing)
		}
		_, err := t.Submit.SubmitRun(ctx, team, run, idemKey("ce", tr.TriggerID, e.Source(), e.ID()))
		if err != nil {
			switch api.KindOf(err) {
			case api.KindInvalid, api.KindNotFound, api.KindFailedPrecondition:
				err = events.Permanent(err)
			}
			errs = append(errs, fmt.Errorf("trigger %s: %w", tr.TriggerID, err))
		}
	}
	if matched == 0 {
		return nil, events.Permanent(fmt.Errorf("event %s: no binding of team %s for type %q and source %q", e.ID(), team, e.Type(), e.Source()))
	}
	if len(errs) > 0 {
		err := errors.Join(errs...)
		for _, e := range errs {
			if !events.IsPermanent(e) {
				return nil, err // something is worth a redelivery; idempotency keys absorb the rest
			}
		}
		return nil, events.Permanent(err)
	}
	return nil, nil
}
