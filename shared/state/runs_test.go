package state

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/api"
)

func TestCreateAndGetRun(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	in := api.Run{
		DisplayName:              "nightly",
		PipelineVersionReference: &api.PipelineVersionReference{PipelineID: "p1", PipelineVersionID: "v1"},
		RuntimeConfig:            &api.RuntimeConfig{Parameters: map[string]any{"lr": 0.1}},
		Backend:                  "local",
	}
	r, created, err := s.CreateRun(ctx, "ml", in, CreateRunOptions{})
	if err != nil || !created {
		t.Fatalf("CreateRun = %v, %v", created, err)
	}
	def, err := s.DefaultExperiment(ctx, "ml")
	if err != nil {
		t.Fatal(err)
	}
	// The Default experiment was made first (clock tick 1), then the run (tick 3, as
	// DefaultExperiment's own call read the clock at tick 2 for its lost create).
	want := in
	want.RunID = r.RunID
	want.ExperimentID = def.ExperimentID
	want.State = api.StatePending
	want.StorageState = api.StorageAvailable
	want.CreatedAt = r.CreatedAt
	want.StateHistory = []api.StateChange{{UpdateTime: r.CreatedAt, State: api.StatePending}}
	if d := cmp.Diff(want, r); d != "" {
		t.Errorf("CreateRun result (-want +got):\n%s", d)
	}
	got, err := s.GetRun(ctx, "ml", r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	want.RunDetails = &api.RunDetails{TaskDetails: []api.TaskDetail{}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("GetRun (-want +got):\n%s", d)
	}
	_, _, err = s.CreateRun(ctx, "ml", api.Run{RunID: r.RunID}, CreateRunOptions{})
	wantKind(t, err, api.KindConflict, "second run with the same id")
	_, _, err = s.CreateRun(ctx, "ml", api.Run{State: api.StateCached}, CreateRunOptions{})
	wantKind(t, err, api.KindInvalid, "run created CACHED")
	_, err = s.GetRun(ctx, "ml", "missing")
	wantKind(t, err, api.KindNotFound, "missing run")
	_, _, err = s.CreateRun(ctx, "ml", api.Run{ExperimentID: "no-such-experiment"}, CreateRunOptions{})
	wantKind(t, err, api.KindNotFound, "run in a missing experiment")
}

var runStates = []string{api.StatePending, api.StateRunning, api.StateCanceling, api.StateSucceeded,
	api.StateSkipped, api.StateFailed, api.StateCanceled}

// forward is the run state machine written out by hand, so that the test does not just
// repeat api.CanTransition.
var forward = map[string][]string{
	api.StatePending:   {api.StateRunning, api.StateCanceling, api.StateSucceeded, api.StateSkipped, api.StateFailed, api.StateCanceled},
	api.StateRunning:   {api.StateCanceling, api.StateSucceeded, api.StateSkipped, api.StateFailed, api.StateCanceled},
	api.StateCanceling: {api.StateSucceeded, api.StateSkipped, api.StateFailed, api.StateCanceled},
}

func TestTransitionTable(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	exp, err := s.DefaultExperiment(ctx, "ml")
	if err != nil {
		t.Fatal(err)
	}
	terminal := map[string]bool{api.StateSucceeded: true, api.StateSkipped: true, api.StateFailed: true, api.StateCanceled: true}
	for _, from := range runStates {
		for _, to := range runStates {
			t.Run(from+"->"+to, func(t *testing.T) {
				r, _, err := s.CreateRun(ctx, "ml", api.Run{State: from, ExperimentID: exp.ExperimentID}, CreateRunOptions{})
				if err != nil {
					t.Fatal(err)
				}
				wantChanged := slices.Contains(forward[from], to)
				at := epoch.Add(time.Hour)
				changed, err := s.UpdateState(ctx, "ml", r.RunID, to, at)
				if err != nil {
					t.Fatal(err)
				}
				if changed != wantChanged {
					t.Fatalf("changed = %v, want %v", changed, wantChanged)
				}
				got, err := s.GetRun(ctx, "ml", r.RunID)
				if err != nil {
					t.Fatal(err)
				}
				wantState := from
				wantHist := []string{from}
				if wantChanged {
					wantState = to
					wantHist = append(wantHist, to)
				}
				var hist []string
				for _, h := range got.StateHistory {
					hist = append(hist, h.State)
				}
				if got.State != wantState || !cmp.Equal(wantHist, hist) {
					t.Errorf("state %s history %v, want %s %v", got.State, hist, wantState, wantHist)
				}
				if (got.FinishedAt != nil) != terminal[wantState] {
					t.Errorf("finished_at = %v for state %s", got.FinishedAt, wantState)
				}
				if wantChanged && terminal[to] && !got.FinishedAt.Equal(at) {
					t.Errorf("finished_at = %v, want %v", got.FinishedAt, at)
				}
				// The indexes follow the state.
				inState := listIDs(t, s, RunFilter{State: wantState})
				if !slices.Contains(inState, r.RunID) {
					t.Errorf("run missing from the %s index", wantState)
				}
				if wantChanged && slices.Contains(listIDs(t, s, RunFilter{State: from}), r.RunID) {
					t.Errorf("run still in the %s index", from)
				}
				active, _, err := s.ListActive(ctx, "ml", ListOptions{PageSize: 1000})
				if err != nil {
					t.Fatal(err)
				}
				isActive := slices.ContainsFunc(active, func(a api.Run) bool { return a.RunID == r.RunID })
				if isActive == terminal[wantState] {
					t.Errorf("active = %v in state %s", isActive, wantState)
				}
			})
		}
	}
}

func TestUpdateStateErrors(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	r, _, err := s.CreateRun(ctx, "ml", api.Run{}, CreateRunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.UpdateState(ctx, "ml", r.RunID, api.StateCached, epoch)
	wantKind(t, err, api.KindInvalid, "run moved to CACHED")
	_, err = s.UpdateState(ctx, "ml", r.RunID, "DONE", epoch)
	wantKind(t, err, api.KindInvalid, "unknown state")
	_, err = s.UpdateState(ctx, "ml", "missing", api.StateRunning, epoch)
	wantKind(t, err, api.KindNotFound, "missing run")

	// A late RUNNING after SUCCEEDED is a no-op, and so is a repeated SUCCEEDED.
	for _, st := range []string{api.StateRunning, api.StateSucceeded} {
		if ok, err := s.UpdateState(ctx, "ml", r.RunID, st, epoch); !ok || err != nil {
			t.Fatalf("UpdateState(%s) = %v, %v", st, ok, err)
		}
	}
	for _, st := range []string{api.StateRunning, api.StateSucceeded, api.StateFailed, api.StatePending} {
		if ok, err := s.UpdateState(ctx, "ml", r.RunID, st, epoch); ok || err != nil {
			t.Errorf("UpdateState(%s) after SUCCEEDED = %v, %v; want false, nil", st, ok, err)
		}
	}
	failed, _, _ := s.CreateRun(ctx, "ml", api.Run{}, CreateRunOptions{})
	status := &api.Status{Code: 2, Message: "task train failed: exit 1"}
	if ok, err := s.Transition(ctx, "ml", failed.RunID, StateUpdate{State: api.StateFailed, At: epoch, Error: status}); !ok || err != nil {
		t.Fatalf("Transition to FAILED = %v, %v", ok, err)
	}
	got, _ := s.GetRun(ctx, "ml", failed.RunID)
	if d := cmp.Diff(status, got.Error); d != "" {
		t.Errorf("run error (-want +got):\n%s", d)
	}
	if d := cmp.Diff(status, got.StateHistory[1].Error); d != "" {
		t.Errorf("history error (-want +got):\n%s", d)
	}
}

func TestConcurrentTransitionsPickOneTerminal(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	r, _, err := s.CreateRun(ctx, "ml", api.Run{}, CreateRunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners := 0
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := []string{api.StateSucceeded, api.StateFailed, api.StateCanceled, api.StateRunning}[i%4]
			ok, err := s.UpdateState(ctx, "ml", r.RunID, st, epoch)
			if err != nil {
				t.Error(err)
			}
			if ok && st != api.StateRunning {
				mu.Lock()
				winners++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if winners != 1 {
		t.Fatalf("%d reports moved the run to a terminal state, want exactly 1", winners)
	}
}

func TestIdempotentCreateUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	const n = 32
	var wg sync.WaitGroup
	ids := make([]string, n)
	created := make([]bool, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, c, err := s.CreateRun(ctx, "ml", api.Run{DisplayName: fmt.Sprint("attempt ", i)},
				CreateRunOptions{IdempotencyKey: "webhook:delivery-42"})
			if err != nil {
				t.Error(err)
				return
			}
			ids[i], created[i] = r.RunID, c
		}()
	}
	wg.Wait()
	nCreated := 0
	for i := range n {
		if created[i] {
			nCreated++
		}
		if ids[i] != ids[0] || ids[i] == "" {
			t.Fatalf("callers got different runs: %v", ids)
		}
	}
	if nCreated != 1 {
		t.Fatalf("%d callers created a run, want 1", nCreated)
	}
	if all := listIDs(t, s, RunFilter{}); len(all) != 1 {
		t.Fatalf("%d runs stored, want 1", len(all))
	}
	// A different key makes a different run; deleting the run frees its key.
	other, c, err := s.CreateRun(ctx, "ml", api.Run{}, CreateRunOptions{IdempotencyKey: "webhook:delivery-43"})
	if err != nil || !c || other.RunID == ids[0] {
		t.Fatalf("other key: %v %v %v", other.RunID, c, err)
	}
	if err := s.DeleteRun(ctx, "ml", ids[0]); err != nil {
		t.Fatal(err)
	}
	again, c, err := s.CreateRun(ctx, "ml", api.Run{}, CreateRunOptions{IdempotencyKey: "webhook:delivery-42"})
	if err != nil || !c || again.RunID == ids[0] {
		t.Fatalf("key after delete: %v %v %v", again.RunID, c, err)
	}
}

func TestDeleteRunLeavesNoIndexEntries(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	r, _, err := s.CreateRun(ctx, "ml", api.Run{PipelineVersionReference: &api.PipelineVersionReference{PipelineVersionID: "v1"}}, CreateRunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpsertTask(ctx, "ml", r.RunID, api.TaskDetail{TaskID: "a", State: api.StateRunning}); err != nil {
		t.Fatal(err)
	}
	if err := s.ArchiveRun(ctx, "ml", r.RunID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRun(ctx, "ml", r.RunID); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.DeleteRun(ctx, "ml", r.RunID), api.KindNotFound, "second delete")
	idx, err := s.rdb.Keys(ctx, "pf:{ml}:runs:*").Result()
	if err != nil || len(idx) != 0 {
		t.Errorf("index keys left after delete: %v %v", idx, err)
	}
	left, err := s.rdb.Keys(ctx, "pf:{ml}:run:*").Result()
	if err != nil || len(left) != 0 {
		t.Errorf("run keys left after delete: %v %v", left, err)
	}
}

func TestArchiveRun(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	var ids []string
	for range 4 {
		r, _, err := s.CreateRun(ctx, "ml", api.Run{}, CreateRunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.RunID)
	}
	for _, id := range ids[:2] {
		if err := s.ArchiveRun(ctx, "ml", id); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ArchiveRun(ctx, "ml", ids[0]); err != nil {
		t.Fatalf("archiving twice: %v", err)
	}
	rev := func(xs []string) []string { c := slices.Clone(xs); slices.Reverse(c); return c }
	if d := cmp.Diff(rev(ids[:2]), listIDs(t, s, RunFilter{StorageState: api.StorageArchived})); d != "" {
		t.Errorf("archived (-want +got):\n%s", d)
	}
	if d := cmp.Diff(rev(ids[2:]), listIDs(t, s, RunFilter{StorageState: api.StorageAvailable, State: api.StatePending})); d != "" {
		t.Errorf("available pending (-want +got):\n%s", d)
	}
	if err := s.UnarchiveRun(ctx, "ml", ids[0]); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetRun(ctx, "ml", ids[0])
	if got.StorageState != api.StorageAvailable {
		t.Errorf("storage state after unarchive = %s", got.StorageState)
	}
	wantKind(t, s.ArchiveRun(ctx, "ml", "missing"), api.KindNotFound, "archive missing run")
}

func TestUpsertTask(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	r, _, err := s.CreateRun(ctx, "ml", api.Run{}, CreateRunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t1 := epoch.Add(time.Minute)
	t2 := epoch.Add(2 * time.Minute)
	steps := []struct {
		name    string
		in      api.TaskDetail
		changed bool
		state   string
		pod     string
		end     *time.Time
	}{
		{"new", api.TaskDetail{TaskID: "train", DisplayName: "train", State: api.StatePending}, true, api.StatePending, "", nil},
		{"running with pod", api.TaskDetail{TaskID: "train", State: api.StateRunning, StartTime: &t1, PodName: "pod-1"}, true, api.StateRunning, "pod-1", nil},
		{"repeat", api.TaskDetail{TaskID: "train", State: api.StateRunning, PodName: "pod-1"}, false, api.StateRunning, "pod-1", nil},
		{"succeeded", api.TaskDetail{TaskID: "train", State: api.StateSucceeded, EndTime: &t2,
			OutputParameters: map[string]any{"acc": 0.9}}, true, api.StateSucceeded, "pod-1", &t2},
		{"late running changes nothing", api.TaskDetail{TaskID: "train", State: api.StateRunning, PodName: "pod-2"}, false, api.StateSucceeded, "pod-1", &t2},
		{"late failed changes nothing", api.TaskDetail{TaskID: "train", State: api.StateFailed, EndTime: &t1}, false, api.StateSucceeded, "pod-1", &t2},
	}
	for _, st := range steps {
		changed, err := s.UpsertTask(ctx, "ml", r.RunID, st.in)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got, err := s.GetRun(ctx, "ml", r.RunID)
		if err != nil {
			t.Fatal(err)
		}
		td := got.RunDetails.TaskDetails[0]
		if changed != st.changed || td.State != st.state || td.PodName != st.pod || !cmp.Equal(td.EndTime, st.end) {
			t.Errorf("%s: changed %v state %s pod %q end %v; want %v %s %q %v", st.name, changed, td.State, td.PodName,
				td.EndTime, st.changed, st.state, st.pod, st.end)
		}
	}
	got, _ := s.GetRun(ctx, "ml", r.RunID)
	td := got.RunDetails.TaskDetails[0]
	var hist []string
	for _, h := range td.StateHistory {
		hist = append(hist, h.State)
	}
	if d := cmp.Diff([]string{api.StatePending, api.StateRunning, api.StateSucceeded}, hist); d != "" {
		t.Errorf("task history (-want +got):\n%s", d)
	}
	if td.RunID != r.RunID || td.DisplayName != "train" || td.OutputParameters["acc"] != 0.9 {
		t.Errorf("task lost fields: %+v", td)
	}

	// A stale report fills what is still missing without moving the state.
	if _, err := s.UpsertTask(ctx, "ml", r.RunID, api.TaskDetail{TaskID: "cached", State: api.StateCached, CachedFrom: "run-0"}); err != nil {
		t.Fatal(err)
	}
	changed, err := s.UpsertTask(ctx, "ml", r.RunID, api.TaskDetail{TaskID: "cached", State: api.StateRunning, PodName: "late-pod"})
	if err != nil || !changed {
		t.Fatalf("filling a missing pod name: %v %v", changed, err)
	}
	got, _ = s.GetRun(ctx, "ml", r.RunID)
	c := got.RunDetails.TaskDetails[0]
	if c.TaskID == "train" {
		c = got.RunDetails.TaskDetails[1]
	}
	if c.State != api.StateCached || c.PodName != "late-pod" || c.CachedFrom != "run-0" {
		t.Errorf("cached task after late report: %+v", c)
	}

	// A late task report after the run finished keeps the history stream expiring.
	if _, err := s.UpdateState(ctx, "ml", r.RunID, api.StateSucceeded, epoch); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.Del(ctx, key("ml", "run", r.RunID, "events")).Err(); err != nil { // as if expired
		t.Fatal(err)
	}
	if _, err := s.UpsertTask(ctx, "ml", r.RunID, api.TaskDetail{TaskID: "late", State: api.StateSucceeded}); err != nil {
		t.Fatal(err)
	}
	if ttl, err := s.rdb.TTL(ctx, key("ml", "run", r.RunID, "events")).Result(); err != nil || ttl <= 0 {
		t.Errorf("stream after a late task report: ttl %v, %v; want it to expire", ttl, err)
	}

	_, err = s.UpsertTask(ctx, "ml", "missing", api.TaskDetail{TaskID: "a", State: api.StateRunning})
	wantKind(t, err, api.KindNotFound, "task of a missing run")
	_, err = s.UpsertTask(ctx, "ml", r.RunID, api.TaskDetail{TaskID: "a", State: "BOGUS"})
	wantKind(t, err, api.KindInvalid, "bad task state")
	_, err = s.UpsertTask(ctx, "ml", r.RunID, api.TaskDetail{State: api.StateRunning})
	wantKind(t, err, api.KindInvalid, "task without id")
}

func TestUpsertTaskConcurrentReportsEndForward(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	r, _, err := s.CreateRun(ctx, "ml", api.Run{}, CreateRunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := []string{api.StatePending, api.StateRunning, api.StateSucceeded}[i%3]
			if _, err := s.UpsertTask(ctx, "ml", r.RunID, api.TaskDetail{TaskID: "t", State: st, PodName: fmt.Sprint("pod-", i)}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, _ := s.GetRun(ctx, "ml", r.RunID)
	td := got.RunDetails.TaskDetails[0]
	if td.State != api.StateSucceeded {
		t.Fatalf("task ended %s, want SUCCEEDED", td.State)
	}
	// History only ever moves forward, whatever order the reports landed in.
	for i := 1; i < len(td.StateHistory); i++ {
		if !api.CanTransition(td.StateHistory[i-1].State, td.StateHistory[i].State) {
			t.Errorf("history moves back: %v", td.StateHistory)
		}
	}
}

func TestRetry(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	r, _, err := s.CreateRun(ctx, "ml", api.Run{}, CreateRunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Retry(ctx, "ml", r.RunID)
	wantKind(t, err, api.KindFailedPrecondition, "retry of a PENDING run")
	tasks := map[string]string{"a": api.StateSucceeded, "b": api.StateFailed, "c": api.StateCached, "d": api.StateSkipped, "e": api.StateCanceled}
	for id, st := range tasks {
		if _, err := s.UpsertTask(ctx, "ml", r.RunID, api.TaskDetail{TaskID: id, State: st}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Transition(ctx, "ml", r.RunID, StateUpdate{State: api.StateFailed, At: epoch, Error: &api.Status{Code: 2, Message: "b failed"}}); err != nil {
		t.Fatal(err)
	}
	got, reset, err := s.Retry(ctx, "ml", r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"b", "d", "e"}, reset); d != "" {
		t.Errorf("reset tasks (-want +got):\n%s", d)
	}
	var kept []string
	for _, td := range got.RunDetails.TaskDetails {
		kept = append(kept, td.TaskID)
	}
	slices.Sort(kept)
	if d := cmp.Diff([]string{"a", "c"}, kept); d != "" {
		t.Errorf("kept tasks (-want +got):\n%s", d)
	}
	if got.State != api.StatePending || got.Attempt != 1 || got.FinishedAt != nil || got.Error != nil {
		t.Errorf("after retry: state %s attempt %d finished %v error %v", got.State, got.Attempt, got.FinishedAt, got.Error)
	}
	if !slices.Contains(listActiveIDs(t, s), r.RunID) {
		t.Error("retried run is not active")
	}
	if slices.Contains(listIDs(t, s, RunFilter{State: api.StateFailed}), r.RunID) {
		t.Error("retried run still listed as FAILED")
	}
	// The new attempt runs forward as usual; a second failure can be retried again.
	for _, st := range []string{api.StateRunning, api.StateCanceling, api.StateCanceled} {
		if ok, err := s.UpdateState(ctx, "ml", r.RunID, st, epoch); !ok || err != nil {
			t.Fatalf("UpdateState(%s) after retry = %v %v", st, ok, err)
		}
	}
	// A finished run's history stream expires; a retried run's stream lives again.
	if ttl, err := s.rdb.TTL(ctx, key("ml", "run", r.RunID, "events")).Result(); err != nil || ttl <= 0 || ttl > time.Hour {
		t.Errorf("history stream ttl of a finished run = %v, %v; want up to an hour", ttl, err)
	}
	got, _, err = s.Retry(ctx, "ml", r.RunID)
	if err != nil || got.Attempt != 2 {
		t.Fatalf("second retry: attempt %d, %v", got.Attempt, err)
	}
	if ttl, err := s.rdb.TTL(ctx, key("ml", "run", r.RunID, "events")).Result(); err != nil || ttl != -1 {
		t.Errorf("history stream ttl after retry = %v, %v; want none (-1)", ttl, err)
	}
	_, _, err = s.Retry(ctx, "ml", "missing")
	wantKind(t, err, api.KindNotFound, "retry of a missing run")
}

func TestWatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, _ := newStore(t)
	r, _, err := s.CreateRun(ctx, "ml", api.Run{}, CreateRunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	type seen struct{ Type, State, Task string }
	watch := func(from string, out chan<- []seen) {
		var got []seen
		err := s.Watch(ctx, "ml", r.RunID, from, func(e RunEvent) error {
			got = append(got, seen{e.Type, e.State, e.TaskID})
			if e.Type == "state" && api.Terminal(e.State) {
				return ErrStopWatch
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		out <- got
	}
	all, live := make(chan []seen, 1), make(chan []seen, 1)
	go watch("", all)
	// "$" must see only what happens after it starts.
	go watch("$", live)
	time.Sleep(300 * time.Millisecond) // both watchers are blocked in XREAD by now
	if _, err := s.UpdateState(ctx, "ml", r.RunID, api.StateRunning, epoch); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpsertTask(ctx, "ml", r.RunID, api.TaskDetail{TaskID: "train", State: api.StateSucceeded}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateState(ctx, "ml", r.RunID, api.StateSucceeded, epoch); err != nil {
		t.Fatal(err)
	}
	after := []seen{{"state", api.StateRunning, ""}, {"task", api.StateSucceeded, "train"}, {"state", api.StateSucceeded, ""}}
	if d := cmp.Diff(append([]seen{{"created", api.StatePending, ""}}, after...), <-all); d != "" {
		t.Errorf("watch from the start (-want +got):\n%s", d)
	}
	if d := cmp.Diff(after, <-live); d != "" {
		t.Errorf("watch from $ (-want +got):\n%s", d)
	}

	evs, err := s.RunEvents(ctx, "ml", r.RunID, "", 0, 0)
	if err != nil || len(evs) != 4 {
		t.Fatalf("RunEvents = %d entries, %v", len(evs), err)
	}
	var td api.TaskDetail
	if err := jsonUnmarshal(evs[2].Data, &td); err != nil || td.TaskID != "train" {
		t.Errorf("task event data = %s (%v)", evs[2].Data, err)
	}
	rest, err := s.RunEvents(ctx, "ml", r.RunID, evs[1].ID, 0, 0)
	if err != nil || len(rest) != 2 || rest[0].ID != evs[2].ID {
		t.Errorf("RunEvents after %s = %v, %v", evs[1].ID, rest, err)
	}

	// Cancelling the context ends a watch that sees nothing new.
	cctx, ccancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Watch(cctx, "ml", r.RunID, "$", func(RunEvent) error { return nil }) }()
	ccancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("cancelled Watch returned nil")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after cancellation")
	}
	wantKind(t, s.Watch(ctx, "ml", "missing", "", func(RunEvent) error { return nil }), api.KindNotFound, "watch of a missing run")
}

func listIDs(t *testing.T, s *Store, f RunFilter) []string {
	t.Helper()
	var out []string
	tok := ""
	for {
		runs, next, err := s.ListRuns(context.Background(), "ml", ListOptions{PageSize: 1000, PageToken: tok}, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			out = append(out, r.RunID)
		}
		if next == "" {
			return out
		}
		tok = next
	}
}

func listActiveIDs(t *testing.T, s *Store) []string {
	t.Helper()
	runs, _, err := s.ListActive(context.Background(), "ml", ListOptions{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range runs {
		out = append(out, r.RunID)
	}
	return out
}

func TestTaskTransitionTable(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	r, _, err := s.CreateRun(ctx, "ml", api.Run{}, CreateRunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	taskStates := append(slices.Clone(runStates), api.StateCached)
	// Tasks follow the run rules, and CACHED is one more terminal state.
	taskForward := map[string][]string{}
	for from, tos := range forward {
		taskForward[from] = append(slices.Clone(tos), api.StateCached)
	}
	for _, from := range taskStates {
		for _, to := range taskStates {
			id := from + "-" + to
			if _, err := s.UpsertTask(ctx, "ml", r.RunID, api.TaskDetail{TaskID: id, State: from}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.UpsertTask(ctx, "ml", r.RunID, api.TaskDetail{TaskID: id, State: to}); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := s.GetRun(ctx, "ml", r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, td := range got.RunDetails.TaskDetails {
		states[td.TaskID] = td.State
	}
	for _, from := range taskStates {
		for _, to := range taskStates {
			want := from
			if slices.Contains(taskForward[from], to) {
				want = to
			}
			if got := states[from+"-"+to]; got != want {
				t.Errorf("task %s then %s ends %s, want %s", from, to, got, want)
			}
		}
	}
}
