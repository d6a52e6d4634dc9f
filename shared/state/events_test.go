package state

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/events"
	"github.com/pipefn/pipefn/shared/redistest"
)

var _ events.Deduper = (*Store)(nil)

// A Broker redelivering an event to two replicas of a function: the Redis-backed dedupe
// lets the work happen once, and a failed attempt does not swallow the redelivery.
func TestStoreDedupesRedeliveredEvents(t *testing.T) {
	s, _ := newStore(t)
	var calls atomic.Int32
	h := func(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
		if calls.Add(1) == 1 {
			return nil, errors.New("redis hiccup")
		}
		return nil, nil
	}
	var replicas []*httptest.Server
	for range 2 {
		r := events.NewRouter(nil)
		r.Handle(events.TypeRunSubmitted, events.Dedupe(s, time.Hour, h))
		srv := httptest.NewServer(events.HTTPHandler(r))
		defer srv.Close()
		replicas = append(replicas, srv)
	}
	e, err := events.NewRunSubmitted("/submit", epoch, events.RunSubmitted{RunID: "r1", Team: "ml", Backend: "local"})
	if err != nil {
		t.Fatal(err)
	}
	var statuses []int
	for i := range 4 {
		req, err := cehttp.NewHTTPRequestFromEvent(context.Background(), replicas[i%2].URL, e)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
	if d := cmp.Diff([]int{500, 202, 202, 202}, statuses); d != "" {
		t.Errorf("statuses (-want +got):\n%s", d)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("handler ran %d times, want 2 (one failure, one success)", n)
	}
}

// After Redis crashes and comes back (empty, as tests run it without persistence) the
// store reconnects on its own; while it is down, errors are Unavailable (retryable).
func TestStoreSurvivesRedisRestart(t *testing.T) {
	ctx := context.Background()
	srv := redistest.StartServer(t)
	s := New(srv.Client(), nil)
	r, _, err := s.CreateRun(ctx, "ml", api.Run{}, CreateRunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	_, err = s.UpdateState(ctx, "ml", r.RunID, api.StateRunning, epoch)
	wantKind(t, err, api.KindUnavailable, "UpdateState with Redis down")
	srv.Restart()
	_, err = s.GetRun(ctx, "ml", r.RunID)
	wantKind(t, err, api.KindNotFound, "run after a crash without persistence")
	if _, _, err := s.CreateRun(ctx, "ml", api.Run{}, CreateRunOptions{}); err != nil {
		t.Fatalf("CreateRun after restart: %v", err)
	}
}
