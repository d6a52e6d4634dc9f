package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/api"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// mustEvent unwraps a constructor's result; constructors fail only on programming errors
// in the test itself.
func mustEvent(e cloudevents.Event, err error) cloudevents.Event {
	if err != nil {
		panic(err)
	}
	return e
}

func TestConstructors(t *testing.T) {
	type attrs struct{ Type, Subject, ID, Team, Source string }
	cases := []struct {
		name string
		ev   func() (cloudevents.Event, error)
		want attrs
		data any
		back func(cloudevents.Event) (any, error)
	}{
		{
			name: "submitted",
			ev: func() (cloudevents.Event, error) {
				return NewRunSubmitted("/pipefn/submit", t0, RunSubmitted{RunID: "r1", Team: "ml", Backend: "local", Attempt: 2})
			},
			want: attrs{TypeRunSubmitted, "r1", "submitted:r1:2", "ml", "/pipefn/submit"},
			data: RunSubmitted{RunID: "r1", Team: "ml", Backend: "local", Attempt: 2},
			back: func(e cloudevents.Event) (any, error) { return Decode[RunSubmitted](e) },
		},
		{
			name: "dispatched",
			ev: func() (cloudevents.Event, error) {
				return NewRunDispatched("/pipefn/compile", t0, RunDispatched{RunID: "r1", Team: "ml", Backend: "tekton", Object: "pf-r1", Namespace: "ml"})
			},
			want: attrs{TypeRunDispatched, "r1", "dispatched:r1:0", "ml", "/pipefn/compile"},
			data: RunDispatched{RunID: "r1", Team: "ml", Backend: "tekton", Object: "pf-r1", Namespace: "ml"},
			back: func(e cloudevents.Event) (any, error) { return Decode[RunDispatched](e) },
		},
		{
			name: "task finished",
			ev: func() (cloudevents.Event, error) {
				return NewTaskFinished("/pipefn/status", t0, TaskFinished{RunID: "r1", Team: "ml", Attempt: 1,
					Task: api.TaskDetail{RunID: "r1", TaskID: "train", State: api.StateSucceeded}})
			},
			want: attrs{TypeTaskFinished, "r1", "task:r1:1:train:SUCCEEDED", "ml", "/pipefn/status"},
			data: TaskFinished{RunID: "r1", Team: "ml", Attempt: 1, Task: api.TaskDetail{RunID: "r1", TaskID: "train", State: api.StateSucceeded}},
			back: func(e cloudevents.Event) (any, error) { return Decode[TaskFinished](e) },
		},
		{
			name: "schedule fired",
			ev: func() (cloudevents.Event, error) {
				return NewScheduleFired("/pipefn/schedule", t0, ScheduleFired{RecurringRunID: "rr1", Team: "ml", ScheduledAt: t0})
			},
			want: attrs{TypeScheduleFired, "rr1", fmt.Sprintf("fired:rr1:%d", t0.Unix()), "ml", "/pipefn/schedule"},
			data: ScheduleFired{RecurringRunID: "rr1", Team: "ml", ScheduledAt: t0},
			back: func(e cloudevents.Event) (any, error) { return Decode[ScheduleFired](e) },
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := c.ev()
			if err != nil {
				t.Fatal(err)
			}
			got := attrs{e.Type(), e.Subject(), e.ID(), Team(e), e.Source()}
			if d := cmp.Diff(c.want, got); d != "" {
				t.Errorf("attributes (-want +got):\n%s", d)
			}
			if !e.Time().Equal(t0) {
				t.Errorf("time = %v, want %v", e.Time(), t0)
			}
			back, err := c.back(e)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(c.data, back); d != "" {
				t.Errorf("data round trip (-want +got):\n%s", d)
			}
		})
	}
}

func TestRunStatusIDsAreUnique(t *testing.T) {
	d := RunStatus{RunID: "r1", Team: "ml", State: api.StateRunning}
	a := mustEvent(NewRunStatus("/s", t0, d))
	b := mustEvent(NewRunStatus("/s", t0, d))
	if a.ID() == b.ID() || a.ID() == "" {
		t.Fatalf("status ids %q and %q must be distinct and non-empty", a.ID(), b.ID())
	}
}

func TestConstructorRejectsMissingTeam(t *testing.T) {
	if _, err := NewRunSubmitted("/s", t0, RunSubmitted{RunID: "r1"}); err == nil {
		t.Fatal("an event without a team was built")
	}
}

func TestDecodeMalformedIsPermanent(t *testing.T) {
	e := cloudevents.NewEvent()
	e.SetID("x")
	e.SetSource("/t")
	e.SetType(TypeRunSubmitted)
	_ = e.SetData(cloudevents.ApplicationJSON, []byte(`{"run_id": 7}`))
	if _, err := Decode[RunSubmitted](e); !IsPermanent(err) {
		t.Fatalf("Decode of a mistyped payload: err = %v, want a permanent error", err)
	}
}

func TestRouterLongestPrefixWins(t *testing.T) {
	r := NewRouter(nil)
	var got []string
	mark := func(name string) Handler {
		return func(context.Context, cloudevents.Event) (*cloudevents.Event, error) {
			got = append(got, name)
			return nil, nil
		}
	}
	r.HandlePrefix("dev.tekton.event.", mark("tekton"))
	r.HandlePrefix(TektonTaskRunPrefix, mark("taskrun"))
	r.Handle(TektonTaskRunPrefix+"started.v1", mark("exact"))
	for _, typ := range []string{TektonTaskRunPrefix + "started.v1", TektonTaskRunPrefix + "successful.v1", TektonPipelineRunPrefix + "failed.v1"} {
		e := cloudevents.NewEvent()
		e.SetID("1")
		e.SetSource("/t")
		e.SetType(typ)
		if _, err := r.Dispatch(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	e := cloudevents.NewEvent()
	e.SetID("1")
	e.SetSource("/t")
	e.SetType("com.example.other")
	if _, err := r.Dispatch(context.Background(), e); !IsPermanent(err) {
		t.Errorf("unrouted type: err = %v, want permanent", err)
	}
	if d := cmp.Diff([]string{"exact", "taskrun", "tekton"}, got); d != "" {
		t.Errorf("handlers run (-want +got):\n%s", d)
	}
}

// chainRouter: submitted -> dispatched reply; dispatched -> no reply.
func chainRouter(t *testing.T, seen *[]string, mu *sync.Mutex) *Router {
	r := NewRouter(nil)
	r.Handle(TypeRunSubmitted, func(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
		d, err := Decode[RunSubmitted](e)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		*seen = append(*seen, e.Type()+" "+d.RunID)
		mu.Unlock()
		next, err := NewRunDispatched("/compile", t0, RunDispatched{RunID: d.RunID, Team: d.Team, Backend: d.Backend})
		return &next, err
	})
	r.Handle(TypeRunDispatched, func(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
		mu.Lock()
		*seen = append(*seen, e.Type()+" "+e.Subject())
		mu.Unlock()
		return nil, nil
	})
	return r
}

func TestHTTPBinaryAndStructuredWithReply(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(HTTPHandler(chainRouter(t, &seen, &mu)))
	defer srv.Close()

	in := mustEvent(NewRunSubmitted("/submit", t0, RunSubmitted{RunID: "r1", Team: "ml", Backend: "local"}))
	for _, mode := range []string{"binary", "structured"} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			if mode == "structured" {
				ctx = binding.WithForceStructured(ctx)
			} else {
				ctx = binding.WithForceBinary(ctx)
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := cehttp.WriteRequest(ctx, binding.ToMessage(&in), req); err != nil {
				t.Fatal(err)
			}
			structured := strings.HasPrefix(req.Header.Get("Content-Type"), "application/cloudevents+json")
			if structured != (mode == "structured") {
				t.Fatalf("request built in the wrong mode: content-type %q", req.Header.Get("Content-Type"))
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %s: %s", resp.Status, b)
			}
			if resp.Header.Get("Ce-Id") == "" {
				t.Errorf("reply is not in binary mode: headers %v", resp.Header)
			}
			reply, err := cehttp.NewEventFromHTTPResponse(resp)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode[RunDispatched](*reply)
			if err != nil {
				t.Fatal(err)
			}
			want := RunDispatched{RunID: "r1", Team: "ml", Backend: "local"}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("reply data (-want +got):\n%s", d)
			}
			if reply.Type() != TypeRunDispatched || Team(*reply) != "ml" {
				t.Errorf("reply type %q team %q", reply.Type(), Team(*reply))
			}
		})
	}
	if d := cmp.Diff([]string{TypeRunSubmitted + " r1", TypeRunSubmitted + " r1"}, seen); d != "" {
		t.Errorf("handled (-want +got):\n%s", d)
	}
}

func TestHTTPStatusMapping(t *testing.T) {
	r := NewRouter(nil)
	fail := map[string]error{
		"perm":    Permanent(errors.New("bad run id")),
		"invalid": api.Errorf(api.KindInvalid, "bad parameter"),
		"redis":   errors.New("redis: connection refused"),
		"unavail": api.Errorf(api.KindUnavailable, "shutting down"),
	}
	r.Handle("t.fail", func(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
		return nil, fail[e.Subject()]
	})
	r.Handle("t.ok", func(context.Context, cloudevents.Event) (*cloudevents.Event, error) { return nil, nil })
	r.Handle("t.panic", func(context.Context, cloudevents.Event) (*cloudevents.Event, error) { panic("boom") })
	r.Handle("t.badreply", func(context.Context, cloudevents.Event) (*cloudevents.Event, error) {
		e := cloudevents.NewEvent() // no id, source or type
		return &e, nil
	})
	srv := httptest.NewServer(HTTPHandler(r))
	defer srv.Close()

	ev := func(typ, subject string) *http.Request {
		e := cloudevents.NewEvent()
		e.SetID("id-1")
		e.SetSource("/test")
		e.SetType(typ)
		e.SetSubject(subject)
		req, err := cehttp.NewHTTPRequestFromEvent(context.Background(), srv.URL, e)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	raw := func(method, ctype, body string, hdr map[string]string) *http.Request {
		req, _ := http.NewRequest(method, srv.URL, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		return req
	}
	cases := []struct {
		name string
		req  *http.Request
		want int
	}{
		{"accepted without reply", ev("t.ok", ""), http.StatusAccepted},
		{"permanent", ev("t.fail", "perm"), http.StatusBadRequest},
		{"api invalid", ev("t.fail", "invalid"), http.StatusBadRequest},
		{"transient", ev("t.fail", "redis"), http.StatusInternalServerError},
		{"unavailable", ev("t.fail", "unavail"), http.StatusServiceUnavailable},
		{"panic is transient", ev("t.panic", ""), http.StatusInternalServerError},
		{"invalid reply", ev("t.badreply", ""), http.StatusBadRequest},
		{"no handler", ev("t.none", ""), http.StatusBadRequest},
		{"binary without id", raw("POST", "application/json", "{}",
			map[string]string{"Ce-Specversion": "1.0", "Ce-Type": "t.ok", "Ce-Source": "/x"}), http.StatusBadRequest},
		{"structured garbage", raw("POST", "application/cloudevents+json", "{not json", nil), http.StatusBadRequest},
		{"not a cloudevent", raw("POST", "application/json", `{"a":1}`, nil), http.StatusUnsupportedMediaType},
		{"batch", raw("POST", "application/cloudevents-batch+json", `[]`, nil), http.StatusBadRequest},
		{"get", raw("GET", "", "", nil), http.StatusMethodNotAllowed},
		{"too large", raw("POST", "application/json", `"`+strings.Repeat("x", MaxEventBytes)+`"`,
			map[string]string{"Ce-Specversion": "1.0", "Ce-Type": "t.ok", "Ce-Source": "/x", "Ce-Id": "1"}), http.StatusRequestEntityTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := http.DefaultClient.Do(c.req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("status = %d (%s), want %d", resp.StatusCode, b, c.want)
			}
		})
	}
}

func TestHTTPSender(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	r := chainRouter(t, &seen, &mu)
	r.Handle("t.transient", func(context.Context, cloudevents.Event) (*cloudevents.Event, error) {
		return nil, errors.New("redis down")
	})
	srv := httptest.NewServer(HTTPHandler(r))
	defer srv.Close()
	s := NewHTTPSender(srv.URL, srv.Client())

	ok := mustEvent(NewRunDispatched("/c", t0, RunDispatched{RunID: "r9", Team: "ml"}))
	if err := s.Send(context.Background(), ok); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if d := cmp.Diff([]string{TypeRunDispatched + " r9"}, seen); d != "" {
		t.Errorf("handled (-want +got):\n%s", d)
	}
	unrouted := ok.Clone()
	unrouted.SetType("t.unknown")
	if err := s.Send(context.Background(), unrouted); err == nil || !IsPermanent(err) {
		t.Errorf("Send of an unroutable event: err = %v, want permanent", err)
	}
	transient := ok.Clone()
	transient.SetType("t.transient")
	if err := s.Send(context.Background(), transient); err == nil || IsPermanent(err) {
		t.Errorf("Send to a failing handler: err = %v, want transient", err)
	}
}

// memDeduper is a map-backed Deduper for transport tests; the Redis one is tested in
// shared/state.
type memDeduper struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (m *memDeduper) SeenEvent(_ context.Context, team, id string, _ time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := team + "/" + id
	if m.seen[k] {
		return false, nil
	}
	m.seen[k] = true
	return true, nil
}

func (m *memDeduper) ForgetEvent(_ context.Context, team, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.seen, team+"/"+id)
	return nil
}

func TestRedeliveryDedupe(t *testing.T) {
	var calls atomic.Int32
	failFirst := true
	h := func(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
		calls.Add(1)
		if failFirst {
			failFirst = false
			return nil, errors.New("transient")
		}
		return nil, nil
	}
	r := NewRouter(nil)
	r.Handle(TypeRunSubmitted, Dedupe(&memDeduper{seen: map[string]bool{}}, time.Hour, h))
	srv := httptest.NewServer(HTTPHandler(r))
	defer srv.Close()
	e := mustEvent(NewRunSubmitted("/s", t0, RunSubmitted{RunID: "r1", Team: "ml"}))

	var statuses []int
	for range 4 { // a failed delivery, then the Broker redelivers three times
		req, err := cehttp.NewHTTPRequestFromEvent(context.Background(), srv.URL, e)
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
	if got := calls.Load(); got != 2 {
		t.Errorf("handler ran %d times, want 2 (the failure and one success)", got)
	}
}

func TestBusFollowsRepliesAndDrains(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	bus := NewBus(chainRouter(t, &seen, &mu), BusOptions{})
	for i := range 20 {
		e := mustEvent(NewRunSubmitted("/s", t0, RunSubmitted{RunID: fmt.Sprintf("r%02d", i), Team: "ml"}))
		if err := bus.Publish(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	got := map[string]int{}
	for _, s := range seen {
		got[s]++
	}
	want := map[string]int{}
	for i := range 20 {
		want[fmt.Sprintf("%s r%02d", TypeRunSubmitted, i)] = 1
		want[fmt.Sprintf("%s r%02d", TypeRunDispatched, i)] = 1
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("handled after Drain (-want +got):\n%s", d)
	}
}

func TestBusRetriesAndDeadLetters(t *testing.T) {
	var attempts sync.Map // subject -> *atomic.Int32
	count := func(s string) *atomic.Int32 {
		v, _ := attempts.LoadOrStore(s, new(atomic.Int32))
		return v.(*atomic.Int32)
	}
	r := NewRouter(nil)
	r.Handle("t", func(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
		n := count(e.Subject()).Add(1)
		switch e.Subject() {
		case "flaky": // succeeds on the third attempt
			if n < 3 {
				return nil, errors.New("redis timeout")
			}
			return nil, nil
		case "poison":
			return nil, Permanent(errors.New("cannot parse"))
		case "down":
			return nil, errors.New("always down")
		}
		return nil, nil
	})
	var dmu sync.Mutex
	dead := map[string]bool{}
	bus := NewBus(r, BusOptions{MaxAttempts: 4, Backoff: time.Millisecond, DeadLetter: func(e cloudevents.Event, err error) {
		dmu.Lock()
		dead[e.Subject()] = true
		dmu.Unlock()
	}})
	for _, s := range []string{"flaky", "poison", "down"} {
		e := cloudevents.NewEvent()
		e.SetID(s)
		e.SetSource("/t")
		e.SetType("t")
		e.SetSubject(s)
		if err := bus.Publish(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[string]int32{}
	attempts.Range(func(k, v any) bool { got[k.(string)] = v.(*atomic.Int32).Load(); return true })
	if d := cmp.Diff(map[string]int32{"flaky": 3, "poison": 1, "down": 4}, got); d != "" {
		t.Errorf("attempts (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]bool{"poison": true, "down": true}, dead); d != "" {
		t.Errorf("dead letters (-want +got):\n%s", d)
	}
}

func TestBusBoundsConcurrencyAndHandlerMayPublish(t *testing.T) {
	var cur, peak atomic.Int32
	var bus *Bus
	r := NewRouter(nil)
	r.Handle("t", func(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
		n := cur.Add(1)
		defer cur.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		// Publishing from inside a handler must not block even when every slot is busy.
		if e.Subject() == "parent" {
			c := e.Clone()
			c.SetID(e.ID() + "-child")
			c.SetSubject("child")
			if err := bus.Publish(ctx, c); err != nil {
				return nil, err
			}
		}
		time.Sleep(2 * time.Millisecond)
		return nil, nil
	})
	bus = NewBus(r, BusOptions{Concurrency: 3})
	for i := range 30 {
		e := cloudevents.NewEvent()
		e.SetID(fmt.Sprint(i))
		e.SetSource("/t")
		e.SetType("t")
		e.SetSubject("parent")
		if err := bus.Publish(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p > 3 || p < 1 {
		t.Errorf("peak concurrency %d, want 1..3", p)
	}
}

func TestBusStopsReplyLoops(t *testing.T) {
	r := NewRouter(nil)
	var n atomic.Int32
	r.Handle("ping", func(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
		n.Add(1)
		next := e.Clone()
		next.SetID(fmt.Sprint(n.Load()))
		return &next, nil
	})
	var dead atomic.Int32
	bus := NewBus(r, BusOptions{MaxChain: 10, DeadLetter: func(cloudevents.Event, error) { dead.Add(1) }})
	e := cloudevents.NewEvent()
	e.SetID("0")
	e.SetSource("/t")
	e.SetType("ping")
	if err := bus.Publish(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 10 || dead.Load() != 1 {
		t.Errorf("handled %d times with %d dead letters, want 10 and 1", n.Load(), dead.Load())
	}
}

func TestBusCloseRefusesAndCancels(t *testing.T) {
	r := NewRouter(nil)
	started := make(chan struct{})
	r.Handle("t", func(ctx context.Context, e cloudevents.Event) (*cloudevents.Event, error) {
		close(started)
		<-ctx.Done() // a long handler that honours cancellation
		return nil, ctx.Err()
	})
	bus := NewBus(r, BusOptions{})
	e := cloudevents.NewEvent()
	e.SetID("1")
	e.SetSource("/t")
	e.SetType("t")
	if err := bus.Publish(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := bus.Publish(context.Background(), e); !errors.Is(err, ErrBusClosed) {
		t.Fatalf("Publish after Close: err = %v, want ErrBusClosed", err)
	}
}

// The SDK's own client, as a Knative Broker or any CloudEvents sender uses it, gets the
// reply event back and sees a transient failure as a NACK with the status code.
func TestSDKClientRequestGetsReply(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	r := chainRouter(t, &seen, &mu)
	r.Handle("t.transient", func(context.Context, cloudevents.Event) (*cloudevents.Event, error) {
		return nil, errors.New("redis down")
	})
	srv := httptest.NewServer(HTTPHandler(r))
	defer srv.Close()
	c, err := cloudevents.NewClientHTTP()
	if err != nil {
		t.Fatal(err)
	}
	ctx := cloudevents.ContextWithTarget(context.Background(), srv.URL)
	in := mustEvent(NewRunSubmitted("/submit", t0, RunSubmitted{RunID: "r7", Team: "ml", Backend: "argo"}))
	reply, res := c.Request(ctx, in)
	if !cloudevents.IsACK(res) {
		t.Fatalf("Request: %v", res)
	}
	if reply == nil || reply.Type() != TypeRunDispatched || reply.Subject() != "r7" || Team(*reply) != "ml" {
		t.Fatalf("reply = %v", reply)
	}
	bad := in.Clone()
	bad.SetType("t.transient")
	_, res = c.Request(ctx, bad)
	var httpRes *cehttp.Result
	if !cloudevents.IsNACK(res) || !cloudevents.ResultAs(res, &httpRes) || httpRes.StatusCode != http.StatusInternalServerError {
		t.Fatalf("transient failure: result %v, want a NACK with status 500", res)
	}
}
