package state

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/redistest"
)

// newRun creates a run in team ml and returns its id.
func newRun(tb testing.TB, s *Store) string {
	tb.Helper()
	r, _, err := s.CreateRun(context.Background(), "ml", api.Run{}, CreateRunOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return r.RunID
}

// appendEntry adds one task entry named task to a run's history, as UpsertTask would
// but without its forward-only rules, so tests can add as many as they like.
func appendEntry(tb testing.TB, s *Store, runID, task string) string {
	tb.Helper()
	id, err := s.rdb.XAdd(context.Background(), &redis.XAddArgs{
		Stream: key("ml", "run", runID, "events"),
		Values: []any{"type", "task", "task", task, "state", api.StateRunning, "attempt", "1"},
	}).Result()
	if err != nil {
		tb.Fatalf("append %s to run %s: %v", task, runID, err)
	}
	return id
}

// historyIDs is every entry id of a run's history after from ("" for all).
func historyIDs(tb testing.TB, s *Store, runID, from string) []string {
	tb.Helper()
	evs, err := s.RunEvents(context.Background(), "ml", runID, from, 100000, 0)
	if err != nil {
		tb.Fatal(err)
	}
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	return ids
}

// watchUntil watches a run from `from` and returns the ids seen up to and including the
// entry of task last.
func watchUntil(ctx context.Context, s *Store, runID, from, last string) ([]string, error) {
	var ids []string
	err := s.Watch(ctx, "ml", runID, from, func(e RunEvent) error {
		ids = append(ids, e.ID)
		if e.TaskID == last {
			return ErrStopWatch
		}
		return nil
	})
	return ids, err
}

func TestParseStreamID(t *testing.T) {
	type res struct {
		ID streamID
		OK bool
	}
	for _, tc := range []struct {
		in   string
		want res
	}{
		{"1700000000000-3", res{streamID{1700000000000, 3}, true}},
		{"0-0", res{streamID{}, true}},
		{"42", res{streamID{42, 0}, true}},
		{"", res{}},
		{"$", res{}},
		{"12-", res{}},
		{"-1", res{}},
		{"1-x", res{}},
		{"99999999999999999999-0", res{}},
	} {
		id, ok := parseStreamID(tc.in)
		if d := cmp.Diff(tc.want, res{id, ok}, cmp.AllowUnexported(streamID{})); d != "" {
			t.Errorf("parseStreamID(%q) (-want +got):\n%s", tc.in, d)
		}
	}
	if a, b := (streamID{5, 9}), (streamID{6, 0}); !a.less(b) || b.less(a) || a.less(a) {
		t.Errorf("less: %v < %v must hold, not the reverse nor reflexively", a, b)
	}
}

// Three hundred viewers of fifty runs on a client with four pooled connections: every
// viewer gets every entry in order, and the Store's other commands stay prompt. With one
// blocking XREAD per watcher (watchPerReader) the watchers hold all four connections and
// this fails: other commands wait for the pool and watchers time out on it.
func TestWatchManyWatchersSmallPool(t *testing.T) {
	const runs, perRun, entries = 50, 6, 20
	srv := redistest.StartServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 4, PoolTimeout: 3 * time.Second, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	s := New(rdb, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	ids := make([]string, runs)
	for i := range ids {
		ids[i] = newRun(t, s)
	}
	got := make([][]string, runs*perRun)
	errs := make([]error, runs*perRun)
	var wg sync.WaitGroup
	for w := range runs * perRun {
		wg.Go(func() { got[w], errs[w] = watchUntil(ctx, s, ids[w%runs], "", "last") })
	}
	// Give the watchers time to settle into their reads: with one read each, the pool is
	// exhausted from here on.
	time.Sleep(500 * time.Millisecond)

	var slowest time.Duration
	for e := range entries {
		for _, id := range ids {
			name := fmt.Sprintf("t%d", e)
			if e == entries-1 {
				name = "last"
			}
			start := time.Now()
			appendEntry(t, s, id, name)
			if _, err := s.GetRun(ctx, "ml", id); err != nil {
				t.Fatalf("GetRun while 300 watch: %v", err)
			}
			slowest = max(slowest, time.Since(start))
		}
	}
	wg.Wait()
	if slowest > time.Second {
		t.Errorf("slowest append+GetRun took %v while watchers watched; want under 1s (watchers must not hold the pool)", slowest)
	}
	for w := range got {
		if errs[w] != nil {
			t.Fatalf("watcher %d of run %s: %v", w, ids[w%runs], errs[w])
		}
		if d := cmp.Diff(historyIDs(t, s, ids[w%runs], ""), got[w]); d != "" {
			t.Fatalf("watcher %d of run %s (-want +got):\n%s", w, ids[w%runs], d)
		}
	}
	if st := rdb.PoolStats(); st.TotalConns > 4 {
		t.Errorf("pool grew to %d connections, limit 4", st.TotalConns)
	}
}

// A watcher whose backlog reading is slow joins a stream the hub has already read past
// its position: it catches up from Redis, then goes live, without a gap or a duplicate.
func TestWatchJoinBehindHub(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, _ := newStore(t)
	run := newRun(t, s)

	// A is live on the run, so the hub reads it.
	aSeen := make(chan string, 100)
	aDone := make(chan []string, 1)
	go func() {
		var ids []string
		_ = s.Watch(ctx, "ml", run, "", func(e RunEvent) error {
			ids = append(ids, e.ID)
			aSeen <- e.TaskID
			if e.TaskID == "last" {
				aDone <- ids
				return ErrStopWatch
			}
			return nil
		})
	}()
	<-aSeen // the created entry: A is past its backlog

	// B reads its backlog (just the created entry) and stalls on it, while five more
	// entries reach A through the hub.
	release := make(chan struct{})
	bDone := make(chan []string, 1)
	bErr := make(chan error, 1)
	go func() {
		var ids []string
		err := s.Watch(ctx, "ml", run, "", func(e RunEvent) error {
			if len(ids) == 0 {
				<-release
			}
			ids = append(ids, e.ID)
			if e.TaskID == "last" {
				return ErrStopWatch
			}
			return nil
		})
		bErr <- err
		bDone <- ids
	}()
	time.Sleep(100 * time.Millisecond) // B is inside its first callback by now
	for i := range 5 {
		appendEntry(t, s, run, fmt.Sprint("t", i))
	}
	for range 5 {
		<-aSeen
	}
	close(release) // B's backlog ends at the created entry; the hub's cursor is 5 ahead
	time.Sleep(100 * time.Millisecond)
	appendEntry(t, s, run, "last")

	want := historyIDs(t, s, run, "")
	if d := cmp.Diff(want, <-aDone); d != "" {
		t.Errorf("watcher A (-want +got):\n%s", d)
	}
	if err := <-bErr; err != nil {
		t.Fatalf("watcher B: %v", err)
	}
	if d := cmp.Diff(want, <-bDone); d != "" {
		t.Errorf("watcher B, joined behind the hub (-want +got):\n%s", d)
	}
}

// Entries appended all the while watchers start from the beginning, from the middle and
// from "$" (more than a backlog page, so paging is crossed): each sees exactly the
// entries after its start, in order.
func TestWatchBacklogAndLiveUnderAppends(t *testing.T) {
	old := watchPage
	watchPage = 7
	t.Cleanup(func() { watchPage = old })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, _ := newStore(t)
	run := newRun(t, s)
	var mid string
	for i := range 30 {
		id := appendEntry(t, s, run, fmt.Sprint("pre", i))
		if i == 15 {
			mid = id
		}
	}

	type watcher struct {
		from string
		got  []string
		err  error
	}
	var (
		mu       sync.Mutex
		watchers []*watcher
		wg       sync.WaitGroup
	)
	stopAppends := make(chan struct{})
	appended := make(chan struct{})
	go func() {
		defer close(appended)
		for i := 0; ; i++ {
			select {
			case <-stopAppends:
				appendEntry(t, s, run, "last")
				return
			default:
			}
			appendEntry(t, s, run, fmt.Sprint("live", i))
			time.Sleep(time.Millisecond)
		}
	}()
	for i := range 24 {
		w := &watcher{from: []string{"", mid, "$"}[i%3]}
		mu.Lock()
		watchers = append(watchers, w)
		mu.Unlock()
		wg.Go(func() { w.got, w.err = watchUntil(ctx, s, run, w.from, "last") })
		time.Sleep(7 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	close(stopAppends)
	<-appended
	wg.Wait()

	all := historyIDs(t, s, run, "")
	for i, w := range watchers {
		if w.err != nil {
			t.Fatalf("watcher %d from %q: %v", i, w.from, w.err)
		}
		from := w.from
		if from == "$" {
			if len(w.got) == 0 {
				t.Fatalf("watcher %d from $ saw nothing, not even the last entry", i)
			}
			// Where "$" resolved races with the appends; what follows it must be the rest
			// of the history: none skipped, none repeated. It never includes the entries
			// there before the watchers started (created + 30).
			j := slices.Index(all, w.got[0])
			if j <= 30 {
				t.Fatalf("watcher %d from $ started at entry %d (%s), before it was started", i, j, w.got[0])
			}
			from = all[j-1]
		}
		if d := cmp.Diff(historyIDs(t, s, run, from), w.got); d != "" {
			t.Errorf("watcher %d from %q (-want +got):\n%s", i, w.from, d)
		}
	}
}

// Cancelling a watch ends it at once, even mid-read of the hub, and leaves the other
// watchers of the run watching.
func TestWatchCancelPromptly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, _ := newStore(t)
	run := newRun(t, s)
	stay := make(chan []string, 1)
	go func() { ids, _ := watchUntil(ctx, s, run, "$", "last"); stay <- ids }()

	cctx, ccancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Watch(cctx, "ml", run, "$", func(RunEvent) error { return nil }) }()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	ccancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Errorf("cancelled Watch returned %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 50*time.Millisecond {
			t.Errorf("cancelled Watch returned after %v; want at once", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after cancellation")
	}
	id := appendEntry(t, s, run, "last")
	if d := cmp.Diff([]string{id}, <-stay); d != "" {
		t.Errorf("the other watcher (-want +got):\n%s", d)
	}
}

// A watcher that stops reading is ended with an Unavailable error once it is watchBuffer
// entries behind, while the other watcher of the same run gets everything on time.
func TestWatchDropsSlowWatcher(t *testing.T) {
	old := watchBuffer
	watchBuffer = 4
	t.Cleanup(func() { watchBuffer = old })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, _ := newStore(t)
	run := newRun(t, s)

	stuck := make(chan struct{})
	slowErr := make(chan error, 1)
	go func() {
		slowErr <- s.Watch(ctx, "ml", run, "$", func(RunEvent) error { <-stuck; return nil })
	}()
	// The fast watcher has the same small buffer, so on a loaded machine it may fall
	// behind too; it then resumes from the last entry it saw, as SSE clients do with
	// Last-Event-ID, and must still get every entry, in order, once.
	before := historyIDs(t, s, run, "")
	from := before[len(before)-1]
	fast := make(chan []string, 1)
	go func() {
		var all []string
		for ctx.Err() == nil {
			ids, err := watchUntil(ctx, s, run, from, "last")
			all = append(all, ids...)
			if len(all) > 0 {
				from = all[len(all)-1]
			}
			if err == nil || api.KindOf(err) != api.KindUnavailable {
				break
			}
		}
		fast <- all
	}()
	time.Sleep(100 * time.Millisecond)

	var want []string
	for i := range 20 {
		want = append(want, appendEntry(t, s, run, fmt.Sprint("t", i)))
	}
	want = append(want, appendEntry(t, s, run, "last"))
	select {
	case got := <-fast:
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("fast watcher (-want +got):\n%s", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the fast watcher was held up by the stuck one")
	}
	close(stuck)
	select {
	case err := <-slowErr:
		wantKind(t, err, api.KindUnavailable, "watch of a stuck watcher")
		if !strings.Contains(err.Error(), "behind") {
			t.Errorf("error %q does not say the watcher fell behind", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck watcher was never ended")
	}
}

// When Redis goes away, live watches end with an Unavailable error instead of hanging.
func TestWatchEndsWhenRedisFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := redistest.StartServer(t)
	s := New(srv.Client(), nil)
	run := newRun(t, s)
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx, "ml", run, "$", func(RunEvent) error { return nil }) }()
	time.Sleep(100 * time.Millisecond)
	srv.Stop()
	select {
	case err := <-done:
		wantKind(t, err, api.KindUnavailable, "watch with Redis down")
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not end after Redis stopped")
	}
}

func TestWatchRejectsBadFromID(t *testing.T) {
	s, _ := newStore(t)
	run := newRun(t, s)
	err := s.Watch(context.Background(), "ml", run, "not-an-id", func(RunEvent) error { return nil })
	wantKind(t, err, api.KindInvalid, "watch from a malformed id")
}

// Watchers that come and go leave no goroutine behind: the hub's reader stops with its
// last watcher.
func TestWatchNoGoroutineLeak(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, _ := newStore(t)
	runs := []string{newRun(t, s), newRun(t, s), newRun(t, s)}
	before := runtime.NumGoroutine()

	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			if _, err := watchUntil(ctx, s, runs[i%3], "", "last"); err != nil {
				t.Error(err)
			}
		})
	}
	cctx, ccancel := context.WithCancel(ctx)
	for i := range 30 {
		wg.Go(func() { _ = s.Watch(cctx, "ml", runs[i%3], "$", func(RunEvent) error { return nil }) })
	}
	time.Sleep(200 * time.Millisecond)
	ccancel()
	for _, r := range runs {
		appendEntry(t, s, r, "last")
	}
	wg.Wait()

	deadline := time.Now().Add(3 * watchHubBlock)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after the watches ended, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// `pipefn up` keeps state in the embedded miniredis: the hub's multi-stream XREAD must
// work there as well.
func TestWatchOnEmbeddedRedis(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, stop, err := Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	runs := []string{newRun(t, s), newRun(t, s)}
	got := make([][]string, 4)
	var wg sync.WaitGroup
	for w := range got {
		wg.Go(func() {
			ids, err := watchUntil(ctx, s, runs[w%2], "", "last")
			if err != nil {
				t.Error(err)
			}
			got[w] = ids
		})
	}
	time.Sleep(100 * time.Millisecond)
	for i := range 3 {
		for _, r := range runs {
			name := fmt.Sprint("t", i)
			if i == 2 {
				name = "last"
			}
			appendEntry(t, s, r, name)
		}
	}
	wg.Wait()
	for w := range got {
		if d := cmp.Diff(historyIDs(t, s, runs[w%2], ""), got[w]); d != "" {
			t.Errorf("watcher %d (-want +got):\n%s", w, d)
		}
	}
}
