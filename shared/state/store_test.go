package state

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/redistest"
)

// tickClock is a test clock that moves 1ms forward on every reading, so records get
// distinct, predictable creation times.
type tickClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *tickClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

var epoch = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)

func newStore(tb testing.TB) (*Store, *tickClock) {
	tb.Helper()
	c := &tickClock{t: epoch}
	return New(redistest.Start(tb), c.Now), c
}

func wantKind(t *testing.T, err error, k api.Kind, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want kind %v", what, k)
	}
	if got := api.KindOf(err); got != k {
		t.Fatalf("%s: error %q has kind %v, want %v", what, err, got, k)
	}
}

func TestPipelinesAndVersions(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)

	p, err := s.CreatePipeline(ctx, "ml", api.Pipeline{DisplayName: "train", Description: "d"})
	if err != nil {
		t.Fatal(err)
	}
	if p.PipelineID == "" || p.Namespace != "ml" || p.CreatedAt.IsZero() {
		t.Fatalf("created pipeline lacks id, namespace or time: %+v", p)
	}
	_, err = s.CreatePipeline(ctx, "ml", api.Pipeline{DisplayName: "train"})
	wantKind(t, err, api.KindConflict, "second pipeline named train")
	// The same name in another team is fine: teams share nothing.
	if _, err := s.CreatePipeline(ctx, "other", api.Pipeline{DisplayName: "train"}); err != nil {
		t.Fatalf("same name in another team: %v", err)
	}
	got, err := s.GetPipeline(ctx, "ml", p.PipelineID)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(p, got); d != "" {
		t.Errorf("GetPipeline (-want +got):\n%s", d)
	}
	byName, err := s.GetPipelineByName(ctx, "ml", "train")
	if err != nil || byName.PipelineID != p.PipelineID {
		t.Errorf("GetPipelineByName = %+v, %v", byName, err)
	}
	_, err = s.GetPipeline(ctx, "other", p.PipelineID)
	wantKind(t, err, api.KindNotFound, "pipeline of ml read as team other")
	_, err = s.GetPipelineByName(ctx, "ml", "nope")
	wantKind(t, err, api.KindNotFound, "unknown pipeline name")

	ir := []byte("# comment kept\npipelineInfo:\n  name: train\n")
	spec := []byte(`{"pipelineInfo":{"name":"train"}}`)
	var versions []api.PipelineVersion
	for i := range 3 {
		v, err := s.CreatePipelineVersion(ctx, "ml", api.PipelineVersion{PipelineID: p.PipelineID,
			DisplayName: fmt.Sprintf("v%d", i), PipelineSpec: spec}, append(ir, byte('0'+i)))
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	_, err = s.CreatePipelineVersion(ctx, "ml", api.PipelineVersion{PipelineID: p.PipelineID, DisplayName: "v1"}, ir)
	wantKind(t, err, api.KindConflict, "second version named v1")
	_, err = s.CreatePipelineVersion(ctx, "ml", api.PipelineVersion{PipelineID: "missing", DisplayName: "v"}, ir)
	wantKind(t, err, api.KindNotFound, "version of a missing pipeline")
	_, err = s.CreatePipelineVersion(ctx, "ml", api.PipelineVersion{PipelineID: p.PipelineID, DisplayName: "empty"}, nil)
	wantKind(t, err, api.KindInvalid, "version without IR")

	gotIR, err := s.GetPipelineVersionIR(ctx, "ml", versions[1].PipelineVersionID)
	if err != nil {
		t.Fatal(err)
	}
	if string(gotIR) != string(ir)+"1" {
		t.Errorf("IR = %q, want the upload byte for byte", gotIR)
	}
	gv, err := s.GetPipelineVersion(ctx, "ml", p.PipelineID, versions[1].PipelineVersionID)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(versions[1], gv); d != "" {
		t.Errorf("GetPipelineVersion (-want +got):\n%s", d)
	}
	if len(gv.Digest) != len("sha256:")+64 {
		t.Errorf("digest %q is not a sha256", gv.Digest)
	}
	_, err = s.GetPipelineVersion(ctx, "ml", "another-pipeline", versions[1].PipelineVersionID)
	wantKind(t, err, api.KindNotFound, "version read through the wrong pipeline")

	list, next, err := s.ListPipelineVersions(ctx, "ml", p.PipelineID, ListOptions{PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	list2, next2, err := s.ListPipelineVersions(ctx, "ml", p.PipelineID, ListOptions{PageSize: 2, PageToken: next})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range append(list, list2...) {
		names = append(names, v.DisplayName)
		if v.PipelineSpec != nil {
			t.Errorf("listed version %s carries its spec", v.DisplayName)
		}
	}
	if d := cmp.Diff([]string{"v2", "v1", "v0"}, names); d != "" || next == "" || next2 != "" {
		t.Errorf("versions newest first (-want +got):\n%s (tokens %q, %q)", d, next, next2)
	}
	latest, err := s.LatestPipelineVersion(ctx, "ml", p.PipelineID)
	if err != nil || latest.DisplayName != "v2" || latest.PipelineSpec == nil {
		t.Errorf("LatestPipelineVersion = %+v, %v; want v2 with spec", latest, err)
	}

	err = s.DeletePipeline(ctx, "ml", p.PipelineID, false)
	wantKind(t, err, api.KindFailedPrecondition, "delete pipeline with versions")
	if err := s.DeletePipelineVersion(ctx, "ml", p.PipelineID, versions[0].PipelineVersionID); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetPipelineVersionIR(ctx, "ml", versions[0].PipelineVersionID)
	wantKind(t, err, api.KindNotFound, "IR of a deleted version")
	// The name is free again after deletion.
	if _, err := s.CreatePipelineVersion(ctx, "ml", api.PipelineVersion{PipelineID: p.PipelineID, DisplayName: "v0"}, ir); err != nil {
		t.Fatalf("re-create deleted version name: %v", err)
	}
	if err := s.DeletePipeline(ctx, "ml", p.PipelineID, true); err != nil {
		t.Fatalf("cascade delete: %v", err)
	}
	_, err = s.GetPipeline(ctx, "ml", p.PipelineID)
	wantKind(t, err, api.KindNotFound, "deleted pipeline")
	_, err = s.GetPipelineVersionIR(ctx, "ml", versions[2].PipelineVersionID)
	wantKind(t, err, api.KindNotFound, "IR after cascade delete")
	keys, err := s.rdb.Keys(ctx, "pf:{ml}:pv:*").Result()
	if err != nil || len(keys) != 0 {
		t.Errorf("version keys left after cascade delete: %v %v", keys, err)
	}
	if _, err := s.CreatePipeline(ctx, "ml", api.Pipeline{DisplayName: "train"}); err != nil {
		t.Errorf("name reusable after delete: %v", err)
	}
}

func TestListPipelinesPages(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	var want []string
	for i := range 11 {
		p, err := s.CreatePipeline(ctx, "ml", api.Pipeline{DisplayName: fmt.Sprintf("p%02d", i)})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, p.DisplayName)
	}
	for _, size := range []int{1, 3, 11, 20} {
		var got []string
		tok := ""
		for pages := 0; ; pages++ {
			ps, next, err := s.ListPipelines(ctx, "ml", ListOptions{PageSize: size, PageToken: tok})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range ps {
				got = append(got, p.DisplayName)
			}
			if next == "" {
				break
			}
			if pages > 20 {
				t.Fatal("pagination does not end")
			}
			tok = next
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("page size %d (-want +got):\n%s", size, d)
		}
	}
}

func TestExperiments(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	e, err := s.CreateExperiment(ctx, "ml", api.Experiment{DisplayName: "exp-a"})
	if err != nil {
		t.Fatal(err)
	}
	want := api.Experiment{ExperimentID: e.ExperimentID, DisplayName: "exp-a", CreatedAt: epoch.Add(time.Millisecond),
		Namespace: "ml", StorageState: api.StorageAvailable}
	if d := cmp.Diff(want, e); d != "" {
		t.Errorf("CreateExperiment (-want +got):\n%s", d)
	}
	_, err = s.CreateExperiment(ctx, "ml", api.Experiment{DisplayName: "exp-a"})
	wantKind(t, err, api.KindConflict, "second experiment named exp-a")

	// Concurrent first uses of the Default experiment make exactly one.
	var wg sync.WaitGroup
	ids := make([]string, 16)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := s.DefaultExperiment(ctx, "ml")
			if err != nil {
				t.Error(err)
			}
			ids[i] = d.ExperimentID
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || id == "" {
			t.Fatalf("DefaultExperiment returned different ids: %v", ids)
		}
	}

	if err := s.ArchiveExperiment(ctx, "ml", e.ExperimentID); err != nil {
		t.Fatal(err)
	}
	names := func(st string) []string {
		es, _, err := s.ListExperiments(ctx, "ml", ListOptions{}, st)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, e.DisplayName+"/"+e.StorageState)
		}
		return out
	}
	if d := cmp.Diff([]string{"exp-a/ARCHIVED", "Default/AVAILABLE"}, names("")); d != "" {
		t.Errorf("all experiments (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"exp-a/ARCHIVED"}, names(api.StorageArchived)); d != "" {
		t.Errorf("archived experiments (-want +got):\n%s", d)
	}
	if err := s.UnarchiveExperiment(ctx, "ml", e.ExperimentID); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"exp-a/AVAILABLE", "Default/AVAILABLE"}, names(api.StorageAvailable)); d != "" {
		t.Errorf("available experiments (-want +got):\n%s", d)
	}
	wantKind(t, s.ArchiveExperiment(ctx, "ml", "nope"), api.KindNotFound, "archive missing experiment")
	_, _, err = s.ListExperiments(ctx, "ml", ListOptions{}, "DELETED")
	wantKind(t, err, api.KindInvalid, "bad storage filter")

	r, _, err := s.CreateRun(ctx, "ml", api.Run{DisplayName: "r", ExperimentID: e.ExperimentID}, CreateRunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.GetExperiment(ctx, "ml", e.ExperimentID)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastRunCreatedAt == nil || !got.LastRunCreatedAt.Equal(r.CreatedAt) {
		t.Errorf("last_run_created_at = %v, want %v", got.LastRunCreatedAt, r.CreatedAt)
	}
}

func TestTeamsAndValidation(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	for _, team := range []string{"b-team", "a1"} {
		if _, err := s.CreatePipeline(ctx, team, api.Pipeline{DisplayName: "p"}); err != nil {
			t.Fatal(err)
		}
	}
	teams, err := s.Teams(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"a1", "b-team"}, teams); d != "" {
		t.Errorf("Teams (-want +got):\n%s", d)
	}
	for _, bad := range []string{"", "A", "x}y", "a:b", "-a", "a-", string(make([]byte, 64))} {
		_, err := s.CreatePipeline(ctx, bad, api.Pipeline{DisplayName: "p"})
		wantKind(t, err, api.KindInvalid, fmt.Sprintf("team %q", bad))
	}
	for _, bad := range []string{"a:b", "a b", "{x}"} {
		_, err := s.GetRun(ctx, "ml", bad)
		wantKind(t, err, api.KindInvalid, fmt.Sprintf("run id %q", bad))
	}
}

func TestSeenEvent(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	first, err := s.SeenEvent(ctx, "ml", "src|id-1", time.Minute)
	if err != nil || !first {
		t.Fatalf("first sighting = %v, %v", first, err)
	}
	again, err := s.SeenEvent(ctx, "ml", "src|id-1", time.Minute)
	if err != nil || again {
		t.Fatalf("second sighting = %v, %v; want false", again, err)
	}
	other, err := s.SeenEvent(ctx, "other", "src|id-1", time.Minute)
	if err != nil || !other {
		t.Fatalf("same id in another team = %v, %v; want true", other, err)
	}
	ttl, err := s.rdb.TTL(ctx, key("ml", "seen", "src|id-1")).Result()
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("dedupe mark ttl = %v, %v", ttl, err)
	}
	if err := s.ForgetEvent(ctx, "ml", "src|id-1"); err != nil {
		t.Fatal(err)
	}
	if first, _ := s.SeenEvent(ctx, "ml", "src|id-1", time.Minute); !first {
		t.Error("after ForgetEvent the id must be new again")
	}
	_, err = s.SeenEvent(ctx, "ml", "x", 0)
	wantKind(t, err, api.KindInvalid, "zero ttl")
}

func TestRedisDownIsUnavailable(t *testing.T) {
	ctx := context.Background()
	srv := redistest.StartServer(t)
	s := New(srv.Client(), nil)
	srv.Stop()
	_, err := s.GetRun(ctx, "ml", "r1")
	wantKind(t, err, api.KindUnavailable, "GetRun with Redis down")
	if !strings.Contains(err.Error(), "unavailable") {
		t.Errorf("error %q does not say the store is unavailable", err)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func TestRedisErrClassification(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	// A wrong key type is a defect, not an outage: not worth retrying.
	if err := s.rdb.Set(ctx, key("ml", "run", "r1"), "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetRun(ctx, "ml", "r1")
	if err == nil || api.KindOf(err) == api.KindUnavailable {
		t.Errorf("WRONGTYPE error = %v (kind %v), want a non-retryable error", err, api.KindOf(err))
	}
	for msg, want := range map[string]bool{
		"LOADING Redis is loading the dataset in memory":        true,
		"READONLY You can't write against a read only replica.": true,
		"ERR Error running script":                              false,
		"WRONGTYPE Operation against a key":                     false,
	} {
		if got := transientReply(msg); got != want {
			t.Errorf("transientReply(%q) = %v, want %v", msg, got, want)
		}
	}
}
