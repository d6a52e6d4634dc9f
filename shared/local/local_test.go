package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/pipefn/pipefn/shared/artifacts"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/launch"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// recorder keeps every reported update.
type recorder struct {
	mu      sync.Mutex
	updates []TaskUpdate
	onState func(TaskUpdate)
}

func (r *recorder) report(u TaskUpdate) {
	r.mu.Lock()
	r.updates = append(r.updates, u)
	hook := r.onState
	r.mu.Unlock()
	if hook != nil {
		hook(u)
	}
}

// final maps each TaskID to its last reported state.
func (r *recorder) final() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]string{}
	for _, u := range r.updates {
		out[u.TaskID] = u.State
	}
	return out
}

// last returns the last update of one task.
func (r *recorder) last(t *testing.T, id string) TaskUpdate {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.updates) - 1; i >= 0; i-- {
		if r.updates[i].TaskID == id {
			return r.updates[i]
		}
	}
	t.Fatalf("no update for task %s", id)
	return TaskUpdate{}
}

// states lists the states one task went through.
func (r *recorder) states(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, u := range r.updates {
		if u.TaskID == id {
			out = append(out, u.State)
		}
	}
	return out
}

// logSink collects each task's output.
type logSink struct {
	mu   sync.Mutex
	bufs map[string]*lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (s *logSink) writer(id string) io.Writer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bufs == nil {
		s.bufs = map[string]*lockedBuffer{}
	}
	if s.bufs[id] == nil {
		s.bufs[id] = &lockedBuffer{}
	}
	return s.bufs[id]
}

func (s *logSink) text(id string) string {
	s.mu.Lock()
	b := s.bufs[id]
	s.mu.Unlock()
	if b == nil {
		return ""
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type outcome struct {
	state    string
	err      error
	rec      *recorder
	logs     *logSink
	warnings []string
	opts     Options
}

func loadFile(t *testing.T, path string) *ir.Pipeline {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ir.Load(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return p
}

// runPipeline binds params, runs p with a recorder and a per-test pipeline
// root, and returns what happened. edit may adjust the options.
func runPipeline(ctx context.Context, t *testing.T, p *ir.Pipeline, params map[string]any, edit func(*Options)) outcome {
	t.Helper()
	bound, err := p.BindParameters(params)
	if err != nil {
		t.Fatalf("BindParameters: %v", err)
	}
	dir := t.TempDir()
	o := outcome{rec: &recorder{}, logs: &logSink{}}
	var wmu sync.Mutex
	opts := Options{
		RunID:        "run-1",
		PipelineRoot: artifacts.FileURI(filepath.Join(dir, "root")),
		Params:       bound,
		WorkDir:      filepath.Join(dir, "work"),
		Report:       o.rec.report,
		Logs:         o.logs.writer,
		Parallelism:  4,
		GracePeriod:  200 * time.Millisecond,
		Warn: func(s string) {
			wmu.Lock()
			o.warnings = append(o.warnings, s)
			wmu.Unlock()
		},
	}
	if edit != nil {
		edit(&opts)
	}
	o.opts = opts
	o.state, o.err = Run(ctx, p, opts)
	return o
}

// plain converts output parameters to Go values for comparison.
func plain(m map[string]*structpb.Value) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v.AsInterface()
	}
	return out
}

func TestTwoStepParamAndArtifact(t *testing.T) {
	p := loadFile(t, "testdata/two_step.yaml")
	o := runPipeline(context.Background(), t, p, map[string]any{"word": "abc"}, nil)
	if o.state != StateSucceeded || o.err != nil {
		t.Fatalf("Run = %s, %v; logs: %q", o.state, o.err, o.logs.text("produce")+o.logs.text("consume"))
	}
	wantFinal := map[string]string{"produce": StateSucceeded, "consume": StateSucceeded}
	if d := cmp.Diff(wantFinal, o.rec.final()); d != "" {
		t.Errorf("final states (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{StatePending, StateRunning, StateSucceeded}, o.rec.states("produce")); d != "" {
		t.Errorf("produce states (-want +got):\n%s", d)
	}
	consume := o.rec.last(t, "consume")
	if d := cmp.Diff(map[string]any{"summary": "ABC/payload-abc/3"}, plain(consume.Outputs.Params)); d != "" {
		t.Errorf("consume outputs (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]any{"upper": "ABC", "count": 3.0}, plain(consume.Inputs.Params)); d != "" {
		t.Errorf("consume inputs (-want +got):\n%s", d)
	}
	arts := o.rec.last(t, "produce").Outputs.Artifacts["data"]
	if len(arts) != 1 {
		t.Fatalf("produce artifact data: got %d artifacts, want 1", len(arts))
	}
	wantURI := artifacts.Join(o.opts.PipelineRoot, "run-1", "produce", "data")
	if arts[0].GetUri() != wantURI {
		t.Errorf("artifact URI = %s, want %s", arts[0].GetUri(), wantURI)
	}
	rc, err := artifacts.NewLocal().Get(context.Background(), arts[0].GetUri())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	body, _ := io.ReadAll(rc)
	if string(body) != "payload-abc" {
		t.Errorf("artifact content = %q, want %q", body, "payload-abc")
	}
	if got := o.rec.last(t, "produce"); got.Start.IsZero() || got.End.Before(got.Start) || got.Attempt != 1 {
		t.Errorf("produce times/attempt: start %v end %v attempt %d", got.Start, got.End, got.Attempt)
	}
}

func TestCondition(t *testing.T) {
	p := loadFile(t, "testdata/condition.yaml")
	for _, tc := range []struct {
		side string
		want map[string]string
	}{
		{"heads", map[string]string{
			"coin": StateSucceeded, "condition-1": StateSucceeded, "condition-1.say-heads": StateSucceeded,
			"condition-2": StateSkipped, "condition-2.say-tails": StateSkipped,
		}},
		{"tails", map[string]string{
			"coin": StateSucceeded, "condition-1": StateSkipped, "condition-1.say-heads": StateSkipped,
			"condition-2": StateSucceeded, "condition-2.say-tails": StateSucceeded,
		}},
		{"edge", map[string]string{
			"coin": StateSucceeded, "condition-1": StateSkipped, "condition-1.say-heads": StateSkipped,
			"condition-2": StateSkipped, "condition-2.say-tails": StateSkipped,
		}},
	} {
		t.Run(tc.side, func(t *testing.T) {
			o := runPipeline(context.Background(), t, p, map[string]any{"side": tc.side}, nil)
			if o.state != StateSucceeded {
				t.Fatalf("Run = %s, %v", o.state, o.err)
			}
			if d := cmp.Diff(tc.want, o.rec.final()); d != "" {
				t.Errorf("final states (-want +got):\n%s", d)
			}
		})
	}
}

func TestIfElifElse(t *testing.T) {
	p := loadFile(t, "testdata/if_elif_else.yaml")
	for _, tc := range []struct {
		num      string
		report   string
		branches map[string]string
	}{
		{"7", "big", map[string]string{"condition-2": StateSucceeded, "condition-3": StateSkipped, "condition-4": StateSkipped}},
		{"5", "five", map[string]string{"condition-2": StateSkipped, "condition-3": StateSucceeded, "condition-4": StateSkipped}},
		{"2", "small", map[string]string{"condition-2": StateSkipped, "condition-3": StateSkipped, "condition-4": StateSucceeded}},
	} {
		t.Run(tc.num, func(t *testing.T) {
			o := runPipeline(context.Background(), t, p, map[string]any{"num": tc.num}, nil)
			if o.state != StateSucceeded {
				t.Fatalf("Run = %s, %v", o.state, o.err)
			}
			got := map[string]string{}
			for id, s := range o.rec.final() {
				if name, ok := strings.CutPrefix(id, "condition-branches-1."); ok && !strings.Contains(name, ".") {
					got[name] = s
				}
			}
			if d := cmp.Diff(tc.branches, got); d != "" {
				t.Errorf("branch states (-want +got):\n%s", d)
			}
			if d := cmp.Diff(map[string]any{"Output": tc.report}, plain(o.rec.last(t, "report").Outputs.Params)); d != "" {
				t.Errorf("report output (-want +got):\n%s", d)
			}
		})
	}
}

func TestStaticLoopParallelismAndFanIn(t *testing.T) {
	p := loadFile(t, "testdata/loop_static.yaml")
	dir := t.TempDir()
	o := runPipeline(context.Background(), t, p, map[string]any{"dir": dir}, nil)
	if o.state != StateSucceeded {
		t.Fatalf("Run = %s, %v", o.state, o.err)
	}
	want := map[string]string{"for-loop-1": StateSucceeded, "gather": StateSucceeded}
	for i := range 4 {
		want["for-loop-1."+strconv.Itoa(i)] = StateSucceeded
		want["for-loop-1."+strconv.Itoa(i)+".work"] = StateSucceeded
	}
	if d := cmp.Diff(want, o.rec.final()); d != "" {
		t.Errorf("final states (-want +got):\n%s", d)
	}
	work2 := o.rec.last(t, "for-loop-1.2.work")
	if d := cmp.Diff(map[string]any{"a": "y", "b": 3.0, "dir": dir}, plain(work2.Inputs.Params)); d != "" {
		t.Errorf("iteration 2 inputs (-want +got):\n%s", d)
	}
	if work2.ParentID != "for-loop-1.2" || o.rec.last(t, "for-loop-1.2").ParentID != "for-loop-1" {
		t.Errorf("parents: work %q, iteration %q", work2.ParentID, o.rec.last(t, "for-loop-1.2").ParentID)
	}
	if d := cmp.Diff(map[string]any{"Output": `["w-1","x-2","y-3","z-4"]`}, plain(o.rec.last(t, "gather").Outputs.Params)); d != "" {
		t.Errorf("gather output (-want +got):\n%s", d)
	}
	conc, err := os.ReadFile(filepath.Join(dir, "concurrency"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(conc))
	if len(lines) != 4 {
		t.Fatalf("concurrency samples = %q, want 4", lines)
	}
	for _, l := range lines {
		if n, _ := strconv.Atoi(l); n < 1 || n > 2 {
			t.Errorf("an iteration saw %s iterations running at once; parallelismLimit is 2", l)
		}
	}
}

func TestDynamicLoopOverUpstreamOutput(t *testing.T) {
	p := loadFile(t, "testdata/loop_dynamic.yaml")
	o := runPipeline(context.Background(), t, p, nil, nil)
	if o.state != StateSucceeded {
		t.Fatalf("Run = %s, %v", o.state, o.err)
	}
	var squares []any
	for i := range 3 {
		squares = append(squares, o.rec.last(t, fmt.Sprintf("for-loop-1.%d.square", i)).Outputs.Params["Output"].AsInterface())
	}
	if d := cmp.Diff([]any{1.0, 4.0, 9.0}, squares); d != "" {
		t.Errorf("squares (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]any{"pipelinechannel--square-Output": []any{1.0, 4.0, 9.0}}, plain(o.rec.last(t, "for-loop-1").Outputs.Params)); d != "" {
		t.Errorf("loop outputs (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]any{"Output": 14.0}, plain(o.rec.last(t, "sum").Outputs.Params)); d != "" {
		t.Errorf("sum (-want +got):\n%s", d)
	}
}

func TestNestedPipeline(t *testing.T) {
	p := loadFile(t, "testdata/nested.yaml")
	o := runPipeline(context.Background(), t, p, nil, nil)
	if o.state != StateSucceeded {
		t.Fatalf("Run = %s, %v", o.state, o.err)
	}
	want := map[string]string{
		"outer": StateSucceeded, "outer.shout": StateSucceeded, "outer.deeper": StateSucceeded,
		"outer.deeper.wrap": StateSucceeded, "finish": StateSucceeded,
	}
	if d := cmp.Diff(want, o.rec.final()); d != "" {
		t.Errorf("final states (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]any{"Output": "[hi !] done"}, plain(o.rec.last(t, "finish").Outputs.Params)); d != "" {
		t.Errorf("finish output (-want +got):\n%s", d)
	}
	wantKinds := map[string]string{"outer": KindDAG, "outer.deeper": KindDAG, "outer.deeper.wrap": KindContainer}
	gotKinds := map[string]string{}
	for id := range wantKinds {
		u := o.rec.last(t, id)
		gotKinds[id] = u.Kind
	}
	if d := cmp.Diff(wantKinds, gotKinds); d != "" {
		t.Errorf("kinds (-want +got):\n%s", d)
	}
	if got := o.rec.last(t, "outer.deeper.wrap").ParentID; got != "outer.deeper" {
		t.Errorf("wrap ParentID = %q, want outer.deeper", got)
	}
}

func TestExitHandlerRunsAfterFailure(t *testing.T) {
	p := loadFile(t, "testdata/exit_handler.yaml")
	o := runPipeline(context.Background(), t, p, nil, nil)
	if o.state != StateFailed {
		t.Fatalf("Run = %s, want FAILED", o.state)
	}
	if o.err == nil || !strings.Contains(o.err.Error(), "exit-handler-1.fail-op") {
		t.Errorf("Run error = %v, want it to name exit-handler-1.fail-op", o.err)
	}
	want := map[string]string{
		"exit-handler-1":            StateFailed,
		"exit-handler-1.fail-op":    StateFailed,
		"exit-handler-1.print-op":   StateSucceeded,
		"exit-handler-1.after-fail": StateSkipped,
		"exit-handler-1.cleanup":    StateSucceeded,
		"exit-op":                   StateSucceeded,
	}
	if d := cmp.Diff(want, o.rec.final()); d != "" {
		t.Errorf("final states (-want +got):\n%s", d)
	}
	if got := o.rec.last(t, "exit-handler-1.fail-op").Error; !strings.Contains(got, "code 3") {
		t.Errorf("fail-op error = %q, want the exit code", got)
	}
	if got := o.logs.text("exit-handler-1.fail-op"); !strings.Contains(got, "boom") {
		t.Errorf("fail-op log = %q, want boom", got)
	}
	if d := cmp.Diff(map[string]any{"Output": "fallback"}, plain(o.rec.last(t, "exit-handler-1.cleanup").Outputs.Params)); d != "" {
		t.Errorf("cleanup output (-want +got):\n%s", d)
	}
	var status map[string]any
	if err := json.Unmarshal([]byte(o.rec.last(t, "exit-op").Outputs.Params["Output"].GetStringValue()), &status); err != nil {
		t.Fatalf("exit-op output is not the status JSON: %v", err)
	}
	wantStatus := map[string]any{
		"state":                   "FAILED",
		"pipelineJobResourceName": "run-1",
		"pipelineTaskName":        "exit-handler-1",
		"error":                   map[string]any{"code": 2.0, "message": "failed tasks: exit-handler-1.fail-op"},
	}
	if d := cmp.Diff(wantStatus, status); d != "" {
		t.Errorf("final status (-want +got):\n%s", d)
	}
}

func TestRetries(t *testing.T) {
	p := loadFile(t, "testdata/retry.yaml")
	dir := t.TempDir()
	var mu sync.Mutex
	var waits []time.Duration
	o := runPipeline(context.Background(), t, p, map[string]any{"dir": dir}, func(opts *Options) {
		opts.Sleep = func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			waits = append(waits, d)
			mu.Unlock()
			return ctx.Err()
		}
	})
	if o.state != StateFailed {
		t.Fatalf("Run = %s, want FAILED (hopeless runs out of retries)", o.state)
	}
	flaky := o.rec.last(t, "flaky")
	if flaky.State != StateSucceeded || flaky.Attempt != 3 {
		t.Errorf("flaky: %s after %d attempts, want SUCCEEDED after 3", flaky.State, flaky.Attempt)
	}
	if d := cmp.Diff(map[string]any{"Output": 3.0}, plain(flaky.Outputs.Params)); d != "" {
		t.Errorf("flaky output (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{StatePending, StateRunning, StateRunning, StateRunning, StateSucceeded}, o.rec.states("flaky")); d != "" {
		t.Errorf("flaky states (-want +got):\n%s", d)
	}
	hopeless := o.rec.last(t, "hopeless")
	if hopeless.State != StateFailed || hopeless.Attempt != 2 {
		t.Errorf("hopeless: %s after %d attempts, want FAILED after 2", hopeless.State, hopeless.Attempt)
	}
	counts := map[string]int{}
	for _, name := range []string{"flaky", "hopeless"} {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		counts[name] = strings.Count(string(b), "\n")
	}
	if d := cmp.Diff(map[string]int{"flaky": 3, "hopeless": 2}, counts); d != "" {
		t.Errorf("attempts counted by the command (-want +got):\n%s", d)
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(waits)
	if d := cmp.Diff([]time.Duration{0, 2 * time.Second, 6 * time.Second}, waits); d != "" {
		t.Errorf("backoff waits (-want +got):\n%s", d)
	}
}

func TestRetryWait(t *testing.T) {
	policy := func(max int32, base, maxDur time.Duration, factor float64) *pipelinespec.PipelineTaskSpec_RetryPolicy {
		p := &pipelinespec.PipelineTaskSpec_RetryPolicy{MaxRetryCount: max, BackoffDuration: durationpb.New(base), BackoffFactor: factor}
		if maxDur > 0 {
			p.BackoffMaxDuration = durationpb.New(maxDur)
		}
		return p
	}
	for _, tc := range []struct {
		name     string
		p        *pipelinespec.PipelineTaskSpec_RetryPolicy
		attempt  int
		elapsed  time.Duration
		wantWait time.Duration
		wantOK   bool
	}{
		{"no policy", nil, 1, 0, 0, false},
		{"no retries", policy(0, time.Second, 0, 0), 1, 0, 0, false},
		{"first retry", policy(3, time.Second, 0, 0), 1, 0, time.Second, true},
		{"default factor 2", policy(3, time.Second, 0, 0), 3, 0, 4 * time.Second, true},
		{"custom factor", policy(3, time.Second, 0, 1.5), 3, 0, 2250 * time.Millisecond, true},
		{"budget spent", policy(3, time.Second, 0, 0), 4, 0, 0, false},
		{"window passed", policy(9, time.Second, 10*time.Second, 0), 1, 10 * time.Second, 0, false},
		{"wait cut to window", policy(9, 8*time.Second, 10*time.Second, 0), 2, 4 * time.Second, 6 * time.Second, true},
		{"window capped at 1h", policy(9, time.Second, 5*time.Hour, 0), 1, time.Hour, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, ok := retryWait(tc.p, tc.attempt, tc.elapsed)
			if d := cmp.Diff([]any{tc.wantWait, tc.wantOK}, []any{w, ok}); d != "" {
				t.Errorf("retryWait (-want +got):\n%s", d)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	p := loadFile(t, "testdata/timeout.yaml")
	o := runPipeline(context.Background(), t, p, nil, nil)
	if o.state != StateFailed {
		t.Fatalf("Run = %s, want FAILED", o.state)
	}
	slow := o.rec.last(t, "slow")
	if slow.State != StateFailed || !strings.Contains(slow.Error, "timed out after 1s") {
		t.Errorf("slow = %s %q, want FAILED with a timeout error", slow.State, slow.Error)
	}
	if d := cmp.Diff([]string{
		"local run ignores container image (commands run on the host, no image is pulled) (executors exec-slow)",
		"local run ignores nodeSelector (executors exec-slow)",
		"local run ignores tolerations (executors exec-slow)",
	}, o.warnings); d != "" {
		t.Errorf("warnings (-want +got):\n%s", d)
	}
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pid
}

func TestCancelKillsProcesses(t *testing.T) {
	p := loadFile(t, "testdata/cancel.yaml")
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Cancel once the task's background child is known.
		for ctx.Err() == nil {
			if _, err := os.Stat(filepath.Join(dir, "child.pid")); err == nil {
				cancel()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	done := make(chan outcome)
	go func() { done <- runPipeline(ctx, t, p, map[string]any{"dir": dir}, nil) }()
	var o outcome
	select {
	case o = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
	if o.state != StateCanceled || !errors.Is(o.err, context.Canceled) {
		t.Errorf("Run = %s, %v; want CANCELED, context.Canceled", o.state, o.err)
	}
	want := map[string]string{"long": StateCanceled, "next": StateCanceled, "on-exit": StateCanceled}
	if d := cmp.Diff(want, o.rec.final()); d != "" {
		t.Errorf("final states (-want +got):\n%s", d)
	}
	for _, f := range []string{"sh.pid", "child.pid"} {
		pid := readPID(t, filepath.Join(dir, f))
		// SIGKILL is delivered asynchronously; give the kernel a moment.
		for end := time.Now().Add(5 * time.Second); alive(pid) && time.Now().Before(end); {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("process %d (%s) survived the cancellation", pid, f)
		}
	}
	if got := o.rec.states("next"); slices.Contains(got, StateRunning) {
		t.Errorf("next went through %v; it must never start", got)
	}
}

func TestSecretsFromHostEnv(t *testing.T) {
	p := loadFile(t, "testdata/secret_env.yaml")
	env := map[string]string{"PIPEFN_SECRET_DB_CREDS_PASSWORD": "s3cret"}
	o := runPipeline(context.Background(), t, p, nil, func(opts *Options) {
		opts.Getenv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	})
	if o.state != StateSucceeded {
		t.Fatalf("Run = %s, %v", o.state, o.err)
	}
	if d := cmp.Diff(map[string]any{"Output": "s3cret"}, plain(o.rec.last(t, "show").Outputs.Params)); d != "" {
		t.Errorf("show output (-want +got):\n%s", d)
	}

	delete(env, "PIPEFN_SECRET_DB_CREDS_PASSWORD")
	o = runPipeline(context.Background(), t, p, nil, func(opts *Options) {
		opts.Getenv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	})
	if got := o.rec.last(t, "show"); got.State != StateFailed || !strings.Contains(got.Error, "PIPEFN_SECRET_DB_CREDS_PASSWORD") {
		t.Errorf("show without the secret = %s %q, want FAILED naming the variable", got.State, got.Error)
	}
}

func TestCacheHooks(t *testing.T) {
	p := loadFile(t, "testdata/two_step.yaml")
	dir := t.TempDir()
	cached := filepath.Join(dir, "cached-data")
	if err := os.WriteFile(cached, []byte("from-cache"), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var stored, asked []string
	o := runPipeline(context.Background(), t, p, nil, func(opts *Options) {
		opts.CacheLookup = func(_ context.Context, req CacheRequest) (launch.Outputs, bool, error) {
			mu.Lock()
			asked = append(asked, fmt.Sprintf("%s:%v", req.TaskID, req.Config.CacheEnabled))
			mu.Unlock()
			if req.Name != "produce" {
				return launch.Outputs{}, false, nil
			}
			art := &pipelinespec.RuntimeArtifact{Uri: artifacts.FileURI(cached), Type: &pipelinespec.ArtifactTypeSchema{Kind: &pipelinespec.ArtifactTypeSchema_SchemaTitle{SchemaTitle: "system.Dataset"}}}
			return launch.Outputs{
				Params:    map[string]*structpb.Value{"upper": structpb.NewStringValue("CACHED")},
				Artifacts: map[string][]*pipelinespec.RuntimeArtifact{"data": {art}},
			}, true, nil
		}
		opts.CacheStore = func(_ context.Context, req CacheRequest, _ launch.Outputs) error {
			mu.Lock()
			stored = append(stored, req.TaskID)
			mu.Unlock()
			return nil
		}
	})
	if o.state != StateSucceeded {
		t.Fatalf("Run = %s, %v", o.state, o.err)
	}
	if d := cmp.Diff(map[string]string{"produce": StateCached, "consume": StateSucceeded}, o.rec.final()); d != "" {
		t.Errorf("final states (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]any{"summary": "CACHED/from-cache/3"}, plain(o.rec.last(t, "consume").Outputs.Params)); d != "" {
		t.Errorf("consume output (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"consume"}, stored); d != "" {
		t.Errorf("stored in cache (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"produce:true", "consume:true"}, asked); d != "" {
		t.Errorf("cache lookups (-want +got):\n%s", d)
	}
}

func TestReportIsSerialisedAndOrdered(t *testing.T) {
	p := loadFile(t, "testdata/loop_static.yaml")
	var inside, overlaps int
	var mu sync.Mutex
	seen := map[string]string{}
	var bad []string
	o := runPipeline(context.Background(), t, p, map[string]any{"dir": t.TempDir()}, func(opts *Options) {
		opts.Report = func(u TaskUpdate) {
			mu.Lock()
			inside++
			if inside > 1 {
				overlaps++
			}
			// Terminal states never change.
			if prev, ok := seen[u.TaskID]; ok && isFinal(prev) {
				bad = append(bad, fmt.Sprintf("%s: %s after %s", u.TaskID, u.State, prev))
			}
			seen[u.TaskID] = u.State
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			inside--
			mu.Unlock()
		}
	})
	if o.state != StateSucceeded {
		t.Fatalf("Run = %s, %v", o.state, o.err)
	}
	if overlaps != 0 {
		t.Errorf("Report was called concurrently %d times", overlaps)
	}
	if len(bad) > 0 {
		t.Errorf("states moved backwards: %v", bad)
	}
}

func isFinal(s string) bool {
	switch s {
	case StateSucceeded, StateFailed, StateSkipped, StateCanceled, StateCached:
		return true
	}
	return false
}

func TestRunRejectsBadOptions(t *testing.T) {
	p := loadFile(t, "testdata/two_step.yaml")
	for _, tc := range []struct {
		name string
		p    *ir.Pipeline
		opts Options
		want string
	}{
		{"nil pipeline", nil, Options{RunID: "r"}, "no root component"},
		{"no run id", p, Options{}, "RunID is empty"},
		{"missing input", loadFile(t, "testdata/loop_static.yaml"), Options{RunID: "r"}, `parameter "dir"`},
		{"bad root", p, Options{RunID: "r", PipelineRoot: "gs://bucket/x", WorkDir: t.TempDir()}, "unsupported scheme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state, err := Run(context.Background(), tc.p, tc.opts)
			if state != StateFailed || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run = %s, %v; want FAILED and %q", state, err, tc.want)
			}
		})
	}
}

func TestImporter(t *testing.T) {
	p := loadFile(t, "testdata/importer.yaml")
	src := filepath.Join(t.TempDir(), "data.txt")
	if err := os.WriteFile(src, []byte("imported text"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := runPipeline(context.Background(), t, p, map[string]any{"data_uri": artifacts.FileURI(src)}, nil)
	if o.state != StateSucceeded {
		t.Fatalf("Run = %s, %v", o.state, o.err)
	}
	if d := cmp.Diff(map[string]string{"importer": StateSucceeded, "read": StateSucceeded}, o.rec.final()); d != "" {
		t.Errorf("final states (-want +got):\n%s", d)
	}
	imp := o.rec.last(t, "importer")
	if imp.Kind != KindImporter {
		t.Errorf("importer kind = %q, want %q", imp.Kind, KindImporter)
	}
	if arts := imp.Outputs.Artifacts["artifact"]; len(arts) != 1 || arts[0].GetUri() != artifacts.FileURI(src) {
		t.Errorf("importer artifact = %v, want one with URI %s", arts, artifacts.FileURI(src))
	}
	if d := cmp.Diff(map[string]any{"Output": "imported text"}, plain(o.rec.last(t, "read").Outputs.Params)); d != "" {
		t.Errorf("read output (-want +got):\n%s", d)
	}
}

func TestArtifactFanOutAndFanIn(t *testing.T) {
	p := loadFile(t, "testdata/loop_artifacts.yaml")
	o := runPipeline(context.Background(), t, p, nil, nil)
	if o.state != StateSucceeded {
		t.Fatalf("Run = %s, %v", o.state, o.err)
	}
	var uris []string
	for _, a := range o.rec.last(t, "make-files").Outputs.Artifacts["Output"] {
		uris = append(uris, a.GetUri())
	}
	var want []string
	for i := range 3 {
		want = append(want, artifacts.Join(o.opts.PipelineRoot, "run-1", fmt.Sprintf("make-files.for-loop-1.%d.make-file", i), "Output"))
	}
	if d := cmp.Diff(want, uris); d != "" {
		t.Errorf("collected artifact URIs (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]any{"Output": `["A","B","C"]`}, plain(o.rec.last(t, "gather").Outputs.Params)); d != "" {
		t.Errorf("gather output (-want +got):\n%s", d)
	}
	if got := o.rec.last(t, "for-loop-2.1.read-file").Inputs.Artifacts["file"]; len(got) != 1 || got[0].GetUri() != want[1] {
		t.Errorf("iteration 1 read %v, want %s", got, want[1])
	}
}

// The SDK always wraps a ParallelFor body in a DAG, but the IR also allows
// an iterator on an executor task; each iteration is then the task itself.
func TestIteratorOnContainerTask(t *testing.T) {
	p := loadFile(t, "testdata/loop_dynamic.yaml")
	tasks := p.Spec.GetRoot().GetDag().GetTasks()
	loop := tasks["for-loop-1"]
	loop.ComponentRef.Name = "comp-square"
	loop.GetParameterIterator().ItemInput = "x"
	tasks["sum"].GetInputs().GetParameters()["nums"].GetTaskOutputParameter().OutputParameterKey = "Output"
	o := runPipeline(context.Background(), t, p, nil, nil)
	if o.state != StateSucceeded {
		t.Fatalf("Run = %s, %v", o.state, o.err)
	}
	want := map[string]string{
		"make-list": StateSucceeded, "for-loop-1": StateSucceeded, "sum": StateSucceeded,
		"for-loop-1.0": StateSucceeded, "for-loop-1.1": StateSucceeded, "for-loop-1.2": StateSucceeded,
	}
	if d := cmp.Diff(want, o.rec.final()); d != "" {
		t.Errorf("final states (-want +got):\n%s", d)
	}
	if got := o.rec.last(t, "for-loop-1.1"); got.Kind != KindContainer || got.ParentID != "for-loop-1" {
		t.Errorf("iteration 1: kind %q parent %q, want container under for-loop-1", got.Kind, got.ParentID)
	}
	if d := cmp.Diff([]string{StatePending, StateRunning, StateSucceeded}, o.rec.states("for-loop-1.1")); d != "" {
		t.Errorf("iteration 1 states (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]any{"Output": 14.0}, plain(o.rec.last(t, "sum").Outputs.Params)); d != "" {
		t.Errorf("sum (-want +got):\n%s", d)
	}
}

// Options.Parallelism bounds container tasks across the whole run, below
// a loop's own parallelismLimit.
func TestRunParallelismBound(t *testing.T) {
	p := loadFile(t, "testdata/loop_static.yaml")
	dir := t.TempDir()
	o := runPipeline(context.Background(), t, p, map[string]any{"dir": dir}, func(opts *Options) { opts.Parallelism = 1 })
	if o.state != StateSucceeded {
		t.Fatalf("Run = %s, %v", o.state, o.err)
	}
	conc, err := os.ReadFile(filepath.Join(dir, "concurrency"))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"1", "1", "1", "1"}, strings.Fields(string(conc))); d != "" {
		t.Errorf("iterations running at once (-want +got):\n%s", d)
	}
}

// A resumed run reuses what an earlier attempt finished through
// CacheLookup, whether or not the step cache is enabled for the task.
func TestResumeThroughCacheLookup(t *testing.T) {
	p := loadFile(t, "testdata/loop_dynamic.yaml")
	list, _ := structpb.NewList([]any{5.0, 6.0})
	prev := map[string]launch.Outputs{"make-list": {Params: map[string]*structpb.Value{"Output": structpb.NewListValue(list)}}}
	o := runPipeline(context.Background(), t, p, nil, func(opts *Options) {
		opts.CacheLookup = func(_ context.Context, req CacheRequest) (launch.Outputs, bool, error) {
			if req.Config.CacheEnabled {
				return launch.Outputs{}, false, fmt.Errorf("task %s: caching is not enabled in loop_dynamic.yaml", req.TaskID)
			}
			out, ok := prev[req.TaskID]
			return out, ok, nil
		}
	})
	if o.state != StateSucceeded {
		t.Fatalf("Run = %s, %v", o.state, o.err)
	}
	if got := o.rec.states("make-list"); !cmp.Equal(got, []string{StatePending, StateCached}) {
		t.Errorf("make-list states = %v, want PENDING, CACHED", got)
	}
	if d := cmp.Diff(map[string]any{"Output": 61.0}, plain(o.rec.last(t, "sum").Outputs.Params)); d != "" {
		t.Errorf("sum of squares of the reused list (-want +got):\n%s", d)
	}
}

// Run interprets pipelines that skipped validation (ir.Parse only) without
// hanging or panicking, and names what is wrong.
func TestUnvalidatedPipelines(t *testing.T) {
	parse := func(t *testing.T) *ir.Pipeline {
		b, err := os.ReadFile("testdata/two_step.yaml")
		if err != nil {
			t.Fatal(err)
		}
		p, err := ir.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		edit func(p *ir.Pipeline)
		want string
	}{
		{"cycle", func(p *ir.Pipeline) {
			t := p.Spec.GetRoot().GetDag().GetTasks()["produce"]
			t.DependentTasks = append(t.DependentTasks, "consume")
		}, `dependency cycle among tasks consume, produce`},
		{"unknown upstream", func(p *ir.Pipeline) {
			t := p.Spec.GetRoot().GetDag().GetTasks()["produce"]
			t.DependentTasks = append(t.DependentTasks, "ghost")
		}, `task produce depends on task "ghost", which is not in the same DAG`},
		{"unknown component", func(p *ir.Pipeline) {
			p.Spec.GetRoot().GetDag().GetTasks()["produce"].ComponentRef.Name = "comp-ghost"
		}, `task produce failed: component "comp-ghost" is not defined`},
		{"unknown executor", func(p *ir.Pipeline) {
			p.Spec.GetComponents()["comp-produce"].Implementation = &pipelinespec.ComponentSpec_ExecutorLabel{ExecutorLabel: "exec-ghost"}
		}, `task produce failed: executor "exec-ghost" is not defined`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := parse(t)
			tc.edit(p)
			o := runPipeline(context.Background(), t, p, nil, nil)
			if o.state != StateFailed || o.err == nil || !strings.Contains(o.err.Error(), tc.want) {
				t.Errorf("Run = %s, %v; want FAILED with %q", o.state, o.err, tc.want)
			}
		})
	}
}
