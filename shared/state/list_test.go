package state

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/api"
)

// modelRun is what the test knows of a stored run, to compute expected listings.
type modelRun struct {
	id, state, exp, pv, st string
	member                 string
}

func (m modelRun) matches(f RunFilter) bool {
	return (f.State == "" || m.state == f.State) && (f.ExperimentID == "" || m.exp == f.ExperimentID) &&
		(f.PipelineVersionID == "" || m.pv == f.PipelineVersionID) && (f.StorageState == "" || m.st == f.StorageState)
}

// populate stores n runs spread over experiments, versions, states and storage states.
func populate(t *testing.T, s *Store, n int) (runs []modelRun, exps []string) {
	t.Helper()
	ctx := context.Background()
	for i := range 3 {
		e, err := s.CreateExperiment(ctx, "ml", api.Experiment{DisplayName: fmt.Sprint("exp-", i)})
		if err != nil {
			t.Fatal(err)
		}
		exps = append(exps, e.ExperimentID)
	}
	paths := [][]string{{}, {api.StateRunning}, {api.StateRunning, api.StateSucceeded}, {api.StateFailed},
		{api.StateRunning, api.StateCanceling, api.StateCanceled}}
	for i := range n {
		m := modelRun{exp: exps[i%3], pv: fmt.Sprint("pv-", i%4), st: api.StorageAvailable}
		r, _, err := s.CreateRun(ctx, "ml", api.Run{ExperimentID: m.exp,
			PipelineVersionReference: &api.PipelineVersionReference{PipelineVersionID: m.pv}}, CreateRunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m.id, m.member, m.state = r.RunID, sortMember(r.CreatedAt, r.RunID), api.StatePending
		for _, st := range paths[(i/3)%len(paths)] {
			if _, err := s.UpdateState(ctx, "ml", r.RunID, st, epoch); err != nil {
				t.Fatal(err)
			}
			m.state = st
		}
		if i%10 == 7 {
			if err := s.ArchiveRun(ctx, "ml", r.RunID); err != nil {
				t.Fatal(err)
			}
			m.st = api.StorageArchived
		}
		runs = append(runs, m)
	}
	return runs, exps
}

func TestListRunsPaginationUnderConcurrentInserts(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	runs, exps := populate(t, s, 1000)

	filters := map[string]RunFilter{
		"all":                  {},
		"archived":             {StorageState: api.StorageArchived},
		"running":              {State: api.StateRunning},
		"experiment":           {ExperimentID: exps[1]},
		"experiment available": {ExperimentID: exps[1], StorageState: api.StorageAvailable},
		"version":              {PipelineVersionID: "pv-2"},
		"experiment+state":     {ExperimentID: exps[0], State: api.StateSucceeded},
		"every dimension":      {ExperimentID: exps[2], PipelineVersionID: "pv-1", State: api.StateCanceled, StorageState: api.StorageAvailable},
		"nothing matches":      {ExperimentID: exps[0], PipelineVersionID: "pv-1", State: "FAILED", StorageState: api.StorageArchived},
	}
	for name, f := range filters {
		for _, size := range []int{7, 50} {
			for _, order := range []string{"", "created_at asc"} {
				t.Run(fmt.Sprintf("%s/%d/%q", name, size, order), func(t *testing.T) {
					var want []modelRun
					for _, m := range runs {
						if m.matches(f) {
							want = append(want, m)
						}
					}
					desc := order == ""
					slices.SortFunc(want, func(a, b modelRun) int {
						if desc {
							return cmpStrings(b.member, a.member)
						}
						return cmpStrings(a.member, b.member)
					})
					var wantIDs []string
					for _, m := range want {
						wantIDs = append(wantIDs, m.id)
					}

					// Insert runs that match the filter while the pages are read; they are
					// told apart by display name, as the listing may see one before its
					// CreateRun has returned.
					stop := make(chan struct{})
					var inserted sync.Map
					var wg sync.WaitGroup
					var nIns atomic.Int32
					var once sync.Once
					// In ascending order the listing chases the inserts at its tail, so they
					// stop once every old run has been listed.
					stopInserts := func() { once.Do(func() { close(stop) }) }
					defer func() {
						stopInserts()
						wg.Wait()
						// Remove the inserted runs so that later subtests see the model again.
						inserted.Range(func(k, _ any) bool {
							if err := s.DeleteRun(ctx, "ml", k.(string)); err != nil {
								t.Error(err)
							}
							return true
						})
					}()
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							select {
							case <-stop:
								return
							default:
							}
							exp := f.ExperimentID
							if exp == "" {
								exp = exps[0]
							}
							r, _, err := s.CreateRun(ctx, "ml", api.Run{ExperimentID: exp, DisplayName: "concurrent"}, CreateRunOptions{})
							if err != nil {
								t.Error(err)
								return
							}
							inserted.Store(r.RunID, true)
							nIns.Add(1)
						}
					}()

					var got, newSeen []string
					seen := map[string]bool{}
					tok := ""
					for pages := 0; ; pages++ {
						if pages > 5000 { // inserts stop once the old runs are listed, so this is only a runaway guard
							t.Fatal("pagination does not end")
						}
						page, next, err := s.ListRuns(ctx, "ml", ListOptions{PageSize: size, PageToken: tok, SortBy: order}, f)
						if err != nil {
							t.Fatal(err)
						}
						if len(page) > size {
							t.Fatalf("page of %d runs, size %d", len(page), size)
						}
						for _, r := range page {
							if seen[r.RunID] {
								t.Fatalf("run %s listed twice", r.RunID)
							}
							seen[r.RunID] = true
							// New runs sort after every old one: at the tail in ascending order,
							// and in descending order only before the first page was read.
							if r.DisplayName == "concurrent" {
								if desc && len(got) > 0 {
									t.Fatalf("newest-first listing showed run %s, created after the listing started", r.RunID)
								}
								newSeen = append(newSeen, r.RunID)
								continue
							}
							if !desc && len(newSeen) > 0 {
								t.Fatalf("old run %s listed after a run inserted during the listing", r.RunID)
							}
							got = append(got, r.RunID)
						}
						if next == "" {
							break
						}
						tok = next
						if len(got) >= len(wantIDs) {
							stopInserts()
							continue
						}
						// One insert between every two pages for sure, besides the racing ones.
						r, _, err := s.CreateRun(ctx, "ml", api.Run{ExperimentID: exps[0], DisplayName: "concurrent"}, CreateRunOptions{})
						if err != nil {
							t.Fatal(err)
						}
						inserted.Store(r.RunID, true)
					}
					if d := cmp.Diff(wantIDs, got); d != "" {
						t.Errorf("listing (-want +got):\n%s", d)
					}
					if nIns.Load() == 0 {
						t.Log("the racing inserter did not get a run in during this listing")
					}
				})
			}
		}
	}
}

func cmpStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestListRunsRejectsBadOptions(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	for range 3 {
		if _, _, err := s.CreateRun(ctx, "ml", api.Run{}, CreateRunOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	_, tok, err := s.ListRuns(ctx, "ml", ListOptions{PageSize: 1}, RunFilter{})
	if err != nil || tok == "" {
		t.Fatalf("first page: token %q, %v", tok, err)
	}
	cases := map[string]struct {
		opts ListOptions
		f    RunFilter
	}{
		"token for another filter": {ListOptions{PageSize: 1, PageToken: tok}, RunFilter{State: api.StatePending}},
		"token for another order":  {ListOptions{PageSize: 1, PageToken: tok, SortBy: "created_at asc"}, RunFilter{}},
		"garbage token":            {ListOptions{PageToken: "!!not-base64"}, RunFilter{}},
		"page too large":           {ListOptions{PageSize: 1001}, RunFilter{}},
		"negative page":            {ListOptions{PageSize: -1}, RunFilter{}},
		"sort by name":             {ListOptions{SortBy: "name"}, RunFilter{}},
		"sort order":               {ListOptions{SortBy: "created_at sideways"}, RunFilter{}},
		"unknown state":            {ListOptions{}, RunFilter{State: "DONE"}},
		"cached is a task state":   {ListOptions{}, RunFilter{State: api.StateCached}},
		"bad storage":              {ListOptions{}, RunFilter{StorageState: "GONE"}},
		"bad experiment id":        {ListOptions{}, RunFilter{ExperimentID: "a:b"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := s.ListRuns(ctx, "ml", c.opts, c.f)
			wantKind(t, err, api.KindInvalid, name)
		})
	}
	// "created_at desc" is the default order: its tokens interchange.
	if _, _, err := s.ListRuns(ctx, "ml", ListOptions{PageSize: 1, PageToken: tok, SortBy: "created_at desc"}, RunFilter{}); err != nil {
		t.Errorf("explicit default order refused the token: %v", err)
	}
}
