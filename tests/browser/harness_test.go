// Package browser drives pipefn's web UI in headless Chromium (Debian's chromium package,
// driven with chromedp): `pipefn up` runs in-process over a real redis-server, and every
// test acts as a user would, through the pages. Screenshots of the key pages go to
// tests/artefacts/.
package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/pipefn/pipefn/shared/allinone"
	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/client"
	"github.com/pipefn/pipefn/shared/redistest"
)

// chromiumPath is Debian's Chromium; CHROMIUM overrides it.
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// repoRoot is the repository's top directory.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func artefactDir(tb testing.TB) string {
	dir := filepath.Join(repoRoot(), "tests", "artefacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// server is a running `pipefn up` with a client for setting things up and checking them.
type server struct {
	srv *allinone.Server
	c   *client.Client
	url string
}

func startServer(tb testing.TB) *server { return startServerWith(tb, nil) }

// startServerWith lets a test adjust the configuration (edit may be nil).
func startServerWith(tb testing.TB, edit func(*allinone.Config)) *server {
	tb.Helper()
	cfg := allinone.Config{
		Addr: "127.0.0.1:0", DataDir: tb.TempDir(), Tick: 200 * time.Millisecond,
		RedisURL: "redis://" + redistest.StartServer(tb).Addr(),
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if os.Getenv("PIPEFN_BROWSER_LOG") != "" {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := allinone.Start(ctx, cfg)
	if err != nil {
		cancel()
		tb.Fatalf("pipefn up: %v", err)
	}
	tb.Cleanup(func() {
		cancel()
		if err := srv.Wait(); err != nil {
			tb.Errorf("pipefn up stopped with %v", err)
		}
	})
	return &server{srv: srv, c: client.New(srv.URL, ""), url: srv.URL}
}

// proxy stands between the browser and the server so that a test can cut connections
// (a lost server) and see the headers the UI sends.
type proxy struct {
	*httptest.Server
	mu   sync.Mutex
	auth []string // Authorization headers of /apis/ requests, in order
}

func startProxy(tb testing.TB, target string) *proxy {
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatal(err)
	}
	p := &proxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = nil
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/apis/") {
			p.mu.Lock()
			p.auth = append(p.auth, r.Header.Get("Authorization"))
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	tb.Cleanup(p.Close)
	return p
}

func (p *proxy) authHeaders() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.auth...)
}

// newBrowser starts headless Chromium with a fresh profile. Without Chromium the test
// fails, unless PIPEFN_SKIP_BROWSER=1 says to skip (loudly).
func newBrowser(tb testing.TB) context.Context {
	tb.Helper()
	path := chromiumPath()
	if _, err := exec.LookPath(path); err != nil {
		if os.Getenv("PIPEFN_SKIP_BROWSER") == "1" {
			tb.Skipf("SKIPPING BROWSER TESTS: Chromium not found at %s (PIPEFN_SKIP_BROWSER=1); run `make test-deps` to install it", path)
		}
		tb.Fatalf("Chromium not found at %s: install it with `make test-deps` (scripts/install-chromium.sh) or set PIPEFN_SKIP_BROWSER=1 to skip the browser tests", path)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// This machine has no network: without these, Chromium keeps dialling out.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// A laptop's screen.
		chromedp.WindowSize(1366, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	tb.Cleanup(func() { cancel(); cancelAlloc() })
	// The first call starts the browser, with no deadline (a deadline would end it).
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("start Chromium (%s): %v", path, err)
	}
	watchRequests(tb, ctx)
	return ctx
}

// inflight tracks the tab's unfinished requests, so that a timeout can say what the
// page was still waiting for.
type inflight struct {
	mu  sync.Mutex
	req map[network.RequestID]string
}

var tabs sync.Map // context.Context -> *inflight

func watchRequests(tb testing.TB, ctx context.Context) {
	in := &inflight{req: map[network.RequestID]string{}}
	tabs.Store(ctx, in)
	tb.Cleanup(func() { tabs.Delete(ctx) })
	err := chromedp.Listen(ctx, func(ev any) {
		in.mu.Lock()
		defer in.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			in.req[e.RequestID] = e.Request.URL
		case *network.EventLoadingFinished:
			delete(in.req, e.RequestID)
		case *network.EventLoadingFailed:
			delete(in.req, e.RequestID)
		}
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func pendingRequests(ctx context.Context) []string {
	v, ok := tabs.Load(ctx)
	if !ok {
		return nil
	}
	in := v.(*inflight)
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []string
	for _, u := range in.req {
		out = append(out, u)
	}
	return out
}

// run runs actions with a deadline, failing the test with what was being done.
func run(tb testing.TB, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
}

// js is an action that evaluates expr in the page and ignores its value.
func js(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool]("(() => { "+expr+"; return true; })()")(ctx, t)
		return err
	})
}

// waitJS polls a JavaScript expression until it is true.
func waitJS(tb testing.TB, ctx context.Context, what, expr string) {
	tb.Helper()
	deadline := time.Now().Add(45 * time.Second)
	var last any
	for time.Now().Before(deadline) {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("Boolean("+expr+")"))
		if err != nil {
			last = err
		} else if ok {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + ' | ' + document.getElementById('banner').textContent + ' | ' + document.getElementById('main').innerText.slice(0, 600)`))
	tb.Fatalf("timed out waiting for %s (%s); last error %v; requests in flight %q; page: %s", what, expr, last, pendingRequests(ctx), page)
}

// eval evaluates expr and decodes its value (through JSON) into out.
func eval(tb testing.TB, ctx context.Context, expr string, out any) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string]("JSON.stringify("+expr+")"))
	if err != nil {
		tb.Fatalf("evaluate %s: %v", expr, err)
	}
	if err := json.Unmarshal([]byte(s), out); err != nil {
		tb.Fatalf("evaluate %s: %v (%q)", expr, err, s)
	}
}

func screenshot(tb testing.TB, ctx context.Context, name string) {
	tb.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(artefactDir(tb), name+".png")
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("screenshot %s", p)
}

// nodeState is the JavaScript for the state class of a drawn task node.
func nodeState(id string) string {
	return fmt.Sprintf(`(() => { const g = document.querySelector('#run-graph g.node[data-id=%q]'); if (!g) return ''; const m = /n-([A-Z]+)/.exec(g.getAttribute('class')); return m ? m[1] : ''; })()`, id)
}

// waitRun waits (through the API) until a run reaches want.
func (s *server) waitRun(tb testing.TB, id, want string) *api.Run {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_ = s.c.Watch(ctx, id, func(r *api.Run) bool { return r.State != want })
	r, err := s.c.GetRun(ctx, id)
	if err != nil {
		tb.Fatal(err)
	}
	if r.State != want {
		tb.Fatalf("run %s: state %s, want %s (error %+v)", id, r.State, want, r.Error)
	}
	return r
}

func readFile(tb testing.TB, parts ...string) []byte {
	b, err := os.ReadFile(filepath.Join(parts...))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func postJSON(tb testing.TB, url, body string, out any) {
	tb.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	decode(tb, resp, out)
}

func getJSON(tb testing.TB, url string, out any) {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	decode(tb, resp, out)
}

func decode(tb testing.TB, resp *http.Response, out any) {
	tb.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s %s: %s: %s", resp.Request.Method, resp.Request.URL, resp.Status, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		tb.Fatalf("%s: %v", resp.Request.URL, err)
	}
}
