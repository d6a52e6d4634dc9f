package client

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/api"
)

// TestWatchResumesAnEndedStream: a server that ends the stream before the run ends (a
// draining replica, a watcher that fell behind) is asked again from the last event seen,
// and the watch ends only with the run.
func TestWatchResumesAnEndedStream(t *testing.T) {
	var (
		mu      sync.Mutex
		lastIDs []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		n := len(lastIDs)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		send := func(id, state string) {
			if id != "" {
				fmt.Fprintf(w, "id: %s\n", id)
			}
			fmt.Fprintf(w, "event: run\ndata: {\"run_id\":\"r1\",\"state\":%q}\n\n", state)
		}
		switch n {
		case 1:
			send("", api.StatePending)
			send("5-0", api.StateRunning) // then the stream ends early
		default:
			send("", api.StateRunning)
			send("6-0", api.StateSucceeded)
		}
	}))
	defer srv.Close()
	c := New(srv.URL, "")
	var states []string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Watch(ctx, "r1", func(r *api.Run) bool { states = append(states, r.State); return true }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{api.StatePending, api.StateRunning, api.StateRunning, api.StateSucceeded}, states); diff != "" {
		t.Errorf("states seen (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"", "5-0"}, lastIDs); diff != "" {
		t.Errorf("Last-Event-ID per connection (-want +got):\n%s", diff)
	}
}

// TestWatchGivesUpOnAStreamThatNeverMoves: a server that keeps ending the stream with
// nothing new does not keep the watcher forever.
func TestWatchGivesUpOnAStreamThatNeverMoves(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "event: run\ndata: {\"run_id\":\"r1\",\"state\":\"RUNNING\"}\n\n")
	}))
	defer srv.Close()
	err := New(srv.URL, "").Watch(context.Background(), "r1", func(*api.Run) bool { return true })
	if err == nil || calls != maxResumes+1 {
		t.Errorf("Watch = %v after %d connections; want an error after %d (the first and %d resumptions)", err, calls, maxResumes+1, maxResumes)
	}
}
