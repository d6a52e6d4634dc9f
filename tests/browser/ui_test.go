package browser

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/ir"
	"github.com/pipefn/pipefn/shared/lineage"
)

// TestRunLifecycle is the user's path through the UI: upload a pipeline, start a run,
// watch its DAG go from pending to succeeded live, read a task's logs, follow an
// artifact's lineage, clone the run with a new parameter, and terminate another run.
func TestRunLifecycle(t *testing.T) {
	s := startServer(t)
	ctx := newBrowser(t)
	gate := filepath.Join(t.TempDir(), "gate")

	// Upload a pipeline through the form.
	run(t, ctx, "open the pipelines page",
		chromedp.Navigate(s.url+"/pipelines"),
		chromedp.WaitVisible(chromedp.CSS(`#upload-file`)))
	waitJS(t, ctx, "the empty list", `document.querySelector('.empty')?.textContent.includes('No pipelines yet')`)
	run(t, ctx, "upload gated.yaml",
		chromedp.SetUploadFiles(chromedp.CSS(`#upload-file`), []string{filepath.Join(repoRoot(), "tests", "browser", "testdata", "gated.yaml")}),
		chromedp.Click(chromedp.CSS(`#upload-submit`)))
	waitJS(t, ctx, "the pipeline's graph", `document.querySelectorAll('#pipeline-graph g.node').length === 2`)
	var ids []string
	eval(t, ctx, `[...document.querySelectorAll('#pipeline-graph g.node')].map(g => g.dataset.id).sort()`, &ids)
	if diff := cmp.Diff([]string{"produce", "summarise"}, ids); diff != "" {
		t.Errorf("pipeline graph nodes (-want +got):\n%s", diff)
	}
	screenshot(t, ctx, "pipeline")

	// Start a run from the pipeline page; the page is not reloaded from here on.
	run(t, ctx, "start a run",
		chromedp.SetValue(chromedp.CSS(`#p-gate`), gate),
		chromedp.SetValue(chromedp.CSS(`#run-name`), "watched"),
		chromedp.Click(chromedp.CSS(`#start-run`)))
	waitJS(t, ctx, "the run page", `location.pathname.startsWith('/runs/') && document.querySelector('#run-graph svg')`)
	run(t, ctx, "mark the document", js(`window.__sameDocument = true`))
	var runPath string
	eval(t, ctx, `location.pathname`, &runPath)
	runID := strings.TrimPrefix(runPath, "/runs/")

	// The first task waits for the gate: it shows running, and the second (not started,
	// so known only from the IR) shows pending.
	waitJS(t, ctx, "produce running", nodeState("produce")+` === 'RUNNING'`)
	var summarise string
	eval(t, ctx, nodeState("summarise"), &summarise)
	if summarise != api.StatePending {
		t.Errorf("summarise drawn as %q while produce runs, want PENDING", summarise)
	}
	screenshot(t, ctx, "run-running")
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "both tasks succeeded, live", nodeState("produce")+` === 'SUCCEEDED' && `+nodeState("summarise")+` === 'SUCCEEDED'`)
	waitJS(t, ctx, "the run's badge", `document.querySelector('#run-state .badge').textContent === 'succeeded'`)
	var same bool
	eval(t, ctx, `window.__sameDocument === true`, &same)
	if !same {
		t.Error("the run page reloaded to show new states; want live updates in place")
	}

	// A task's logs, reached with the keyboard.
	run(t, ctx, "select summarise with the keyboard",
		chromedp.Focus(chromedp.CSS(`#run-graph g.node[data-id="summarise"]`)),
		chromedp.KeyEvent(kb.Enter))
	waitJS(t, ctx, "the task panel", `document.querySelector('#task-panel h2')?.textContent.startsWith('summarise')`)
	run(t, ctx, "show logs", chromedp.Click(chromedp.CSS(`#show-log`)))
	waitJS(t, ctx, "the log", `document.querySelector('#task-log').textContent.includes('2 lines, first: hello browser')`)
	var panel string
	eval(t, ctx, `document.querySelector('#task-panel').innerText`, &panel)
	for _, want := range []string{"expected", "summary", "Started", "Duration"} {
		if !strings.Contains(panel, want) {
			t.Errorf("task panel lacks %q:\n%s", want, panel)
		}
	}
	waitJS(t, ctx, "the artifacts table", `[...document.querySelectorAll('#artifacts td')].some(td => td.textContent === 'system.Dataset')`)
	screenshot(t, ctx, "run-succeeded")

	// The artifact's lineage: upstream to its producer, downstream to its consumer.
	run(t, ctx, "open lineage", chromedp.Click(chromedp.CSS(`#artifacts a[href$="/lineage"]`)))
	waitJS(t, ctx, "the lineage graph", `document.querySelectorAll('#lineage-graph g.node').length >= 3`)
	var kinds []string
	eval(t, ctx, `[...document.querySelectorAll('#lineage-graph g.node')].map(g => g.querySelector('text.state').textContent.split(' ')[0]).sort()`, &kinds)
	if diff := cmp.Diff([]string{"execution", "execution", "system.Dataset"}, kinds); diff != "" {
		t.Errorf("lineage nodes (-want +got):\n%s", diff)
	}
	screenshot(t, ctx, "lineage")
	// Navigable: explore from the producer.
	run(t, ctx, "select the producer", js(`[...document.querySelectorAll('#lineage-graph g.node')].find(g => g.getAttribute('aria-label').startsWith('produce')).dispatchEvent(new MouseEvent('click', {bubbles: true}))`))
	waitJS(t, ctx, "explore link", `document.querySelector('#lineage-info a[href*="/lineage"]')`)
	run(t, ctx, "explore from the producer", chromedp.Click(chromedp.CSS(`#lineage-info a[href*="/lineage"]`)))
	waitJS(t, ctx, "the producer's lineage", `location.pathname.startsWith('/artifacts/exe-') && document.querySelector('#lineage-graph g.node.start')`)

	// Clone with a new parameter.
	run(t, ctx, "back to the run", chromedp.Navigate(s.url+"/runs/"+runID))
	run(t, ctx, "open the clone dialog",
		chromedp.WaitVisible(`//button[text()="Clone with new parameters"]`),
		chromedp.Click(`//button[text()="Clone with new parameters"]`))
	run(t, ctx, "set a new message",
		chromedp.WaitVisible(chromedp.CSS(`#p-message`)),
		chromedp.SetValue(chromedp.CSS(`#p-message`), "cloned value"),
		chromedp.Click(chromedp.CSS(`#clone-submit`)))
	waitJS(t, ctx, "the clone's page", `location.pathname.startsWith('/runs/') && location.pathname !== '/runs/`+runID+`'`)
	var clonePath string
	eval(t, ctx, `location.pathname`, &clonePath)
	clone := s.waitRun(t, strings.TrimPrefix(clonePath, "/runs/"), api.StateSucceeded)
	want := map[string]any{"gate": gate, "message": "cloned value"}
	if diff := cmp.Diff(want, clone.RuntimeConfig.Parameters); diff != "" {
		t.Errorf("clone parameters (-want +got):\n%s", diff)
	}
	if clone.ClonedFrom != runID {
		t.Errorf("clone's cloned_from = %q, want %q", clone.ClonedFrom, runID)
	}
	waitJS(t, ctx, "the clone succeeded, live", nodeState("summarise")+` === 'SUCCEEDED'`)

	// Terminate a run whose gate never opens.
	blocked, err := s.c.CreateRun(context.Background(), &api.Run{
		DisplayName:              "blocked",
		PipelineVersionReference: clone.PipelineVersionReference,
		RuntimeConfig:            &api.RuntimeConfig{Parameters: map[string]any{"gate": gate + ".never"}},
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "open the blocked run", chromedp.Navigate(s.url+"/runs/"+blocked.RunID))
	waitJS(t, ctx, "blocked run running", nodeState("produce")+` === 'RUNNING'`)
	run(t, ctx, "terminate",
		chromedp.Click(`//button[text()="Terminate"]`),
		chromedp.WaitVisible(`//button[text()="Yes, terminate"]`),
		chromedp.Click(`//button[text()="Yes, terminate"]`))
	waitJS(t, ctx, "the run canceled", `document.querySelector('#run-state .badge').textContent === 'canceled'`)
	waitJS(t, ctx, "produce canceled", nodeState("produce")+` === 'CANCELED'`)
	s.waitRun(t, blocked.RunID, api.StateCanceled)
	screenshot(t, ctx, "run-canceled")

	// The runs list shows all three, newest first, with state and pipeline; filter by state.
	run(t, ctx, "runs list", chromedp.Navigate(s.url+"/"))
	waitJS(t, ctx, "three runs", `document.querySelectorAll('main tbody tr').length === 3`)
	var rows []string
	eval(t, ctx, `[...document.querySelectorAll('main tbody tr')].map(tr => tr.cells[1].textContent + ':' + tr.cells[2].textContent + ':' + tr.cells[5].textContent)`, &rows)
	wantRows := []string{"blocked:canceled:gated", "Clone of watched:succeeded:gated", "watched:succeeded:gated"}
	if diff := cmp.Diff(wantRows, rows); diff != "" {
		t.Errorf("runs list (-want +got):\n%s", diff)
	}
	screenshot(t, ctx, "runs")
	// Two changes at once (a hasty user): the page must still show one list.
	run(t, ctx, "filter canceled", chromedp.SetValue(chromedp.CSS(`#f-state`), "CANCELED"),
		js(`const f = document.querySelector('#f-state'); f.dispatchEvent(new Event('change')); f.dispatchEvent(new Event('change'))`))
	waitJS(t, ctx, "one canceled run", `location.search === '?state=CANCELED' && document.querySelectorAll('main tbody tr').length === 1`)
	run(t, ctx, "settle", chromedp.Sleep(300*time.Millisecond))
	var lists int
	eval(t, ctx, `document.querySelectorAll('main table').length`, &lists)
	if lists != 1 {
		t.Errorf("after two quick navigations the page shows %d lists, want 1", lists)
	}

	// Compare the two succeeded runs side by side.
	run(t, ctx, "runs list", chromedp.Navigate(s.url+"/?state=SUCCEEDED"))
	waitJS(t, ctx, "two runs", `document.querySelectorAll('main tbody tr').length === 2`)
	run(t, ctx, "select both", js(`document.querySelectorAll('main tbody input[type=checkbox]').forEach(c => c.click())`),
		chromedp.Click(`//button[text()="Compare selected"]`))
	waitJS(t, ctx, "the comparison", `location.pathname === '/compare' && document.querySelectorAll('table[aria-label="Parameters by run"] tbody tr').length > 0`)
	var cmpText string
	eval(t, ctx, `document.querySelector('table[aria-label="Parameters by run"]').innerText`, &cmpText)
	if !strings.Contains(cmpText, "cloned value") || !strings.Contains(cmpText, "hello browser") {
		t.Errorf("comparison lacks the two messages:\n%s", cmpText)
	}
	screenshot(t, ctx, "compare")
}

// TestNestedDAGAndLoop draws a run with a condition, a nested DAG and a loop: iterations
// appear with their index, the branch not taken is skipped.
func TestNestedDAGAndLoop(t *testing.T) {
	s := startServer(t)
	ctx := newBrowser(t)
	bg := context.Background()
	p, err := s.c.UploadPipeline(bg, "condition-loop", "", readFile(t, repoRoot(), "examples", "condition-loop.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.c.CreateRun(bg, &api.Run{PipelineVersionReference: &api.PipelineVersionReference{PipelineID: p.PipelineID}}, "")
	if err != nil {
		t.Fatal(err)
	}
	done := s.waitRun(t, r.RunID, api.StateSucceeded)
	run(t, ctx, "open the run", chromedp.Navigate(s.url+"/runs/"+r.RunID))
	waitJS(t, ctx, "the graph", `document.querySelector('#run-graph svg')`)
	var drawn map[string]string
	eval(t, ctx, `Object.fromEntries([...document.querySelectorAll('#run-graph g.node')].map(g => [g.dataset.id, /n-([A-Z]+)/.exec(g.getAttribute('class'))?.[1] || '']))`, &drawn)
	// Every task the run reports is drawn in its state (loop iterations as such).
	for _, td := range done.RunDetails.TaskDetails {
		if got, ok := drawn[td.TaskID]; ok && got != td.State {
			t.Errorf("task %s drawn %s, run says %s", td.TaskID, got, td.State)
		}
	}
	greets := 0
	for id, st := range drawn {
		if strings.HasSuffix(id, ".greet") && st == api.StateSucceeded {
			greets++
		}
	}
	if greets != 3 {
		t.Errorf("drew %d succeeded greet iterations, want 3: %v", greets, drawn)
	}
	for id, want := range map[string]string{"flip": "SUCCEEDED", "condition-1": "SUCCEEDED", "condition-3": "SKIPPED"} {
		if drawn[id] != want {
			t.Errorf("%s drawn %q, want %s (all: %v)", id, drawn[id], want, drawn)
		}
	}
	screenshot(t, ctx, "run-nested-loop")
}

// TestEmptyErrorAndOfflineStates checks what the user sees with nothing stored, with a
// bad address, and when the server goes away; and that the token is sent.
func TestEmptyErrorAndOfflineStates(t *testing.T) {
	s := startServer(t)
	px := startProxy(t, s.url)
	ctx := newBrowser(t)

	for _, tc := range []struct{ path, want string }{
		{"/", "No runs yet."},
		{"/pipelines", "No pipelines yet"},
		{"/recurringruns", "No recurring runs."},
		{"/compare?runs=a", "Select two or more runs"},
	} {
		run(t, ctx, "open "+tc.path, chromedp.Navigate(px.URL+tc.path))
		waitJS(t, ctx, "empty state of "+tc.path, `document.querySelector('.empty')?.textContent.includes(`+jsString(tc.want)+`)`)
	}
	run(t, ctx, "a run that does not exist", chromedp.Navigate(px.URL+"/runs/no-such-run"))
	waitJS(t, ctx, "a not-found error", `document.querySelector('.error-box[role=alert]')?.textContent.toLowerCase().includes('no-such-run')`)
	screenshot(t, ctx, "error-not-found")

	// The token set in the page goes with every API request.
	run(t, ctx, "set a token", chromedp.Navigate(px.URL+"/experiments"),
		chromedp.WaitVisible(chromedp.CSS(`#token-input`)),
		chromedp.SetValue(chromedp.CSS(`#token-input`), "team-token-1"),
		chromedp.Click(`//button[text()="Set token"]`))
	waitJS(t, ctx, "saved", `document.getElementById('banner').textContent.includes('Token saved')`)
	run(t, ctx, "reload", chromedp.Navigate(px.URL+"/pipelines"))
	waitJS(t, ctx, "pipelines", `document.querySelector('.empty')`)
	auth := px.authHeaders()
	if last := auth[len(auth)-1]; last != "Bearer team-token-1" {
		t.Errorf("last API request carried Authorization %q, want the token (all: %q)", last, auth)
	}
	if !slices.Contains(auth, "") {
		t.Errorf("requests before the token was set carried one: %q", auth)
	}

	// A lost connection during a live run: the page says so, then recovers.
	p, err := s.c.UploadPipeline(context.Background(), "gated", "", readFile(t, repoRoot(), "tests", "browser", "testdata", "gated.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	gate := filepath.Join(t.TempDir(), "gate")
	r, err := s.c.CreateRun(context.Background(), &api.Run{
		PipelineVersionReference: &api.PipelineVersionReference{PipelineID: p.PipelineID},
		RuntimeConfig:            &api.RuntimeConfig{Parameters: map[string]any{"gate": gate}},
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "open the run", chromedp.Navigate(px.URL+"/runs/"+r.RunID))
	waitJS(t, ctx, "produce running", nodeState("produce")+` === 'RUNNING'`)
	run(t, ctx, "record banners", js(`window.__banners = []; new MutationObserver(() => __banners.push(document.getElementById('banner').textContent)).observe(document.getElementById('banner'), {childList: true, characterData: true, subtree: true})`))
	px.CloseClientConnections()
	waitJS(t, ctx, "the lost-connection banner", `__banners.some(b => b.includes('Connection to the server lost'))`)
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "reconnected and caught up", nodeState("summarise")+` === 'SUCCEEDED' && document.getElementById('banner').hidden`)

	// The server gone: navigation inside the page says it cannot reach it.
	px.Close()
	run(t, ctx, "navigate while offline", chromedp.Click(chromedp.CSS(`a[data-nav="pipelines"]`)))
	waitJS(t, ctx, "the offline error", `document.querySelector('.error-box')?.textContent.includes('Cannot reach the pipefn server')`)
	screenshot(t, ctx, "offline")
}

// TestRecurringRunsAndExperiments lists a schedule with its next fire times, disables and
// enables it, and creates an experiment.
func TestRecurringRunsAndExperiments(t *testing.T) {
	s := startServer(t)
	ctx := newBrowser(t)
	bg := context.Background()
	p, err := s.c.UploadPipeline(bg, "hello", "", readFile(t, repoRoot(), "examples", "hello-artifacts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Once a year, so it does not fire during the test.
	body := `{"display_name":"yearly","pipeline_version_reference":{"pipeline_id":"` + p.PipelineID + `"},` +
		`"trigger":{"cron_schedule":{"cron":"0 0 1 1 *"}},"mode":"ENABLE","time_zone":"UTC"}`
	var rr api.RecurringRun
	postJSON(t, s.url+"/apis/v2beta1/recurringruns", body, &rr)

	run(t, ctx, "recurring runs", chromedp.Navigate(s.url+"/recurringruns"))
	waitJS(t, ctx, "three fire times", `document.querySelectorAll('main tbody li').length === 3`)
	var first string
	eval(t, ctx, `document.querySelector('main tbody li').textContent`, &first)
	if first == "" {
		t.Error("no next fire time shown")
	}
	screenshot(t, ctx, "recurringruns")
	run(t, ctx, "disable", chromedp.Click(`//button[text()="Disable"]`))
	waitJS(t, ctx, "disabled", `document.querySelector('main tbody .badge').textContent === 'disabled' && document.evaluate('//button[text()="Enable"]', document).iterateNext()`)
	var got api.RecurringRun
	getJSON(t, s.url+"/apis/v2beta1/recurringruns/"+rr.RecurringRunID, &got)
	if got.Status != api.StatusDisabled {
		t.Errorf("after Disable: status %s", got.Status)
	}
	run(t, ctx, "enable", chromedp.Click(`//button[text()="Enable"]`))
	waitJS(t, ctx, "enabled", `document.querySelector('main tbody .badge').textContent === 'enabled'`)

	run(t, ctx, "experiments", chromedp.Navigate(s.url+"/experiments"),
		chromedp.WaitVisible(chromedp.CSS(`#exp-name`)),
		chromedp.SendKeys(chromedp.CSS(`#exp-name`), "tuning"),
		chromedp.SendKeys(chromedp.CSS(`#exp-desc`), "learning rates"),
		chromedp.KeyEvent(kb.Enter))
	waitJS(t, ctx, "the new experiment", `[...document.querySelectorAll('main tbody td a')].some(a => a.textContent === 'tuning')`)
	screenshot(t, ctx, "experiments")
	list, err := s.c.ListExperiments(bg, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range list.Experiments {
		found = found || (e.DisplayName == "tuning" && e.Description == "learning rates")
	}
	if !found {
		t.Errorf("experiment not stored: %+v", list.Experiments)
	}
}

// TestMetricsAndConfusionMatrix shows a run's metrics: scalars as a table and a
// classification's confusion matrix, as the lineage function reports them.
func TestMetricsAndConfusionMatrix(t *testing.T) {
	s := startServer(t)
	ctx := newBrowser(t)
	bg := context.Background()
	p, err := s.c.UploadPipeline(bg, "hello", "", readFile(t, repoRoot(), "examples", "hello-artifacts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.c.CreateRun(bg, &api.Run{PipelineVersionReference: &api.PipelineVersionReference{PipelineID: p.PipelineID}}, "")
	if err != nil {
		t.Fatal(err)
	}
	s.waitRun(t, r.RunID, api.StateSucceeded)
	// An evaluation step's report, as a launcher sends it (KFP SDK metadata shapes).
	now := time.Now().UTC()
	tf := lineage.TaskFinished{
		Pipeline:  "hello-artifacts",
		Execution: lineage.Execution{RunID: r.RunID, TaskID: "evaluate", TaskName: "evaluate", State: api.StateSucceeded, Start: now.Add(-time.Second), End: now},
		Outputs: map[string][]lineage.Artifact{
			"metrics": {{Name: "metrics", Type: lineage.TypeMetrics, URI: "file:///tmp/eval/metrics", Metadata: map[string]any{"accuracy": 0.91, "display_name": "metrics"}}},
			"classification": {{Name: "classification", Type: lineage.TypeClassificationMetrics, URI: "file:///tmp/eval/classification", Metadata: map[string]any{
				"confusionMatrix": map[string]any{
					"annotationSpecs": []any{map[string]any{"displayName": "cat"}, map[string]any{"displayName": "dog"}},
					"rows":            []any{map[string]any{"row": []any{8, 2}}, map[string]any{"row": []any{1, 9}}},
				},
			}}},
		},
	}
	if err := s.srv.Store.RecordTaskFinished(bg, "default", tf); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "open the run", chromedp.Navigate(s.url+"/runs/"+r.RunID))
	waitJS(t, ctx, "the confusion matrix", `document.querySelector('table[aria-label="Confusion matrix"]')`)
	var cm [][]string
	eval(t, ctx, `[...document.querySelectorAll('table[aria-label="Confusion matrix"] tr')].map(tr => [...tr.cells].map(c => c.textContent))`, &cm)
	want := [][]string{{"", "cat", "dog"}, {"cat", "8", "2"}, {"dog", "1", "9"}}
	if diff := cmp.Diff(want, cm); diff != "" {
		t.Errorf("confusion matrix (-want +got):\n%s", diff)
	}
	var scalars [][]string
	eval(t, ctx, `[...document.querySelectorAll('table[aria-label="Scalar metrics"] tbody tr')].map(tr => [...tr.cells].map(c => c.textContent))`, &scalars)
	if diff := cmp.Diff([][]string{{"accuracy", "0.91"}}, scalars); diff != "" {
		t.Errorf("scalar metrics (-want +got):\n%s", diff)
	}
	// Usable at a laptop's width: nothing forces the page wider than the window.
	var overflow bool
	eval(t, ctx, `document.documentElement.scrollWidth > window.innerWidth`, &overflow)
	if overflow {
		t.Error("the run page is wider than a 1366 px window")
	}
	screenshot(t, ctx, "run-metrics")
}

// TestFailedRunAndRetry shows a failed run (inline spec, exit handler) with its error
// and the failed task's log, and retries it from the page.
func TestFailedRunAndRetry(t *testing.T) {
	s := startServer(t)
	ctx := newBrowser(t)
	bg := context.Background()
	spec, err := ir.SpecJSON(readFile(t, repoRoot(), "examples", "failing.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.c.CreateRun(bg, &api.Run{PipelineSpec: spec}, "")
	if err != nil {
		t.Fatal(err)
	}
	s.waitRun(t, r.RunID, api.StateFailed)
	run(t, ctx, "open the run", chromedp.Navigate(s.url+"/runs/"+r.RunID))
	waitJS(t, ctx, "the graph", `document.querySelector('#run-graph svg')`)
	var drawn map[string]string
	eval(t, ctx, `Object.fromEntries([...document.querySelectorAll('#run-graph g.node')].map(g => [g.dataset.id, /n-([A-Z]+)/.exec(g.getAttribute('class'))?.[1] || '']))`, &drawn)
	want := map[string]string{
		"exit-handler-1": "FAILED", "exit-handler-1.prepare": "SUCCEEDED", "exit-handler-1.validate": "FAILED",
		"exit-handler-1.publish": "SKIPPED", "report": "SUCCEEDED",
	}
	if diff := cmp.Diff(want, drawn); diff != "" {
		t.Errorf("drawn states (-want +got):\n%s", diff)
	}
	var head string
	eval(t, ctx, `document.querySelector('main .panel').innerText`, &head)
	if !strings.Contains(head, "validate") {
		t.Errorf("run header does not show the error naming the failed task:\n%s", head)
	}
	run(t, ctx, "open the failed task's log",
		js(`document.querySelector('#run-graph g.node[data-id="exit-handler-1.validate"]').dispatchEvent(new MouseEvent('click', {bubbles: true}))`),
		chromedp.WaitVisible(chromedp.CSS(`#show-log`)),
		chromedp.Click(chromedp.CSS(`#show-log`)))
	waitJS(t, ctx, "the log", `document.querySelector('#task-log').textContent.includes('validation failed: 3 rows have no label')`)
	screenshot(t, ctx, "run-failed")

	run(t, ctx, "retry", chromedp.Click(`//button[text()="Retry"]`))
	waitJS(t, ctx, "the second attempt, failed again", `[...document.querySelectorAll('main dt')].find(dt => dt.textContent === 'Attempt')?.nextElementSibling.textContent === '2' && document.querySelector('#run-state .badge').textContent === 'failed'`)
	got := s.waitRun(t, r.RunID, api.StateFailed)
	if got.Attempt != 1 {
		t.Errorf("attempt after Retry = %d, want 1", got.Attempt)
	}
}

// TestPipelineVersions uploads a second version from the pipeline page and shows the
// graph of the version chosen.
func TestPipelineVersions(t *testing.T) {
	s := startServer(t)
	ctx := newBrowser(t)
	p, err := s.c.UploadPipeline(context.Background(), "evolving", "", readFile(t, repoRoot(), "examples", "hello-artifacts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "open the pipeline", chromedp.Navigate(s.url+"/pipelines/"+p.PipelineID))
	waitJS(t, ctx, "the first version's graph", `document.querySelectorAll('#pipeline-graph g.node').length === 2`)
	run(t, ctx, "upload a version",
		chromedp.SetUploadFiles(chromedp.CSS(`#version-file`), []string{filepath.Join(repoRoot(), "examples", "condition-loop.yaml")}),
		chromedp.Click(`//button[text()="Upload version"]`))
	waitJS(t, ctx, "the new version's graph", `document.querySelectorAll('#version option').length === 2 && document.querySelector('#pipeline-graph g.node[data-id="condition-1.for-loop-2.greet"]')`)
	screenshot(t, ctx, "pipeline-versions")
	// The older version is one choice away, at its own address.
	run(t, ctx, "choose the first version", js(`const v = document.querySelector('#version'); v.value = [...v.options].find(o => !o.selected).value; v.dispatchEvent(new Event('change'))`))
	waitJS(t, ctx, "the first version again", `location.search.startsWith('?version=') && document.querySelectorAll('#pipeline-graph g.node').length === 2`)
	// Its runs: none yet.
	run(t, ctx, "runs of the version", chromedp.Click(`//a[text()="Runs of this version"]`))
	waitJS(t, ctx, "no runs of the version", `location.search.startsWith('?pipeline_version_id=') && document.querySelector('.empty')?.textContent.includes('No runs match')`)
}
