package ui

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// newMux mounts the UI beside stand-ins for the routes it shares a mux with in
// `pipefn up` and the status function, so that collisions show.
func newMux(t *testing.T) *http.ServeMux {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /apis/v2beta1/runs/{id}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "api:run") })
	mux.HandleFunc("/apis/", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "api:404", http.StatusNotFound) })
	mux.HandleFunc("POST /{$}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "cloudevent") })
	Routes(mux)
	return mux
}

type answer struct {
	Status      int
	ContentType string
	Body        string // the first 40 bytes
}

func get(t *testing.T, mux http.Handler, method, target string, hdr map[string]string) (answer, *httptest.ResponseRecorder) {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	body := rec.Body.String()
	if len(body) > 40 {
		body = body[:40]
	}
	return answer{Status: rec.Code, ContentType: rec.Header().Get("Content-Type"), Body: body}, rec
}

func TestRoutes(t *testing.T) {
	mux := newMux(t)
	shell := answer{Status: 200, ContentType: "text/html; charset=utf-8", Body: "<!doctype html>\n<html lang=\"en\">\n<head>\n"}
	tests := []struct {
		method, target string
		want           answer
	}{
		{"GET", "/", shell},
		{"GET", "/?state=FAILED&page_token=abc", shell},
		{"GET", "/runs/run-123", shell},
		{"GET", "/pipelines", shell},
		{"GET", "/pipelines/p-1", shell},
		{"GET", "/artifacts/art-1/lineage", shell},
		{"GET", "/artifacts/exe-1/lineage?direction=downstream", shell},
		{"GET", "/recurringruns", shell},
		{"GET", "/experiments", shell},
		{"GET", "/compare?runs=a,b", shell},
		{"HEAD", "/runs/x", answer{Status: 200, ContentType: "text/html; charset=utf-8"}},
		// The API keeps its own addresses.
		{"GET", "/apis/v2beta1/runs/run-123", answer{Status: 200, ContentType: "text/plain; charset=utf-8", Body: "api:run"}},
		{"GET", "/apis/v2beta1/nothing", answer{Status: 404, ContentType: "text/plain; charset=utf-8", Body: "api:404\n"}},
		{"POST", "/", answer{Status: 200, ContentType: "text/plain; charset=utf-8", Body: "cloudevent"}},
		// Only the listed pages exist.
		{"GET", "/runs", answer{Status: 404, ContentType: "text/plain; charset=utf-8", Body: "404 page not found\n"}},
		{"GET", "/artifacts/art-1", answer{Status: 404, ContentType: "text/plain; charset=utf-8", Body: "404 page not found\n"}},
		{"GET", "/ui/static/nope.js", answer{Status: 404, ContentType: "text/plain; charset=utf-8", Body: "404 page not found\n"}},
		{"GET", "/ui/static/index.html", answer{Status: 404, ContentType: "text/plain; charset=utf-8", Body: "404 page not found\n"}},
		{"GET", "/ui/static/static/app.js", answer{Status: 404, ContentType: "text/plain; charset=utf-8", Body: "404 page not found\n"}},
		{"GET", "/ui/static/app.js", answer{Status: 200, ContentType: "text/javascript; charset=utf-8", Body: "// The UI's entry point: a small router "}},
		{"GET", "/ui/static/style.css", answer{Status: 200, ContentType: "text/css; charset=utf-8", Body: ":root {\n  --fg: #1d2330; --muted: #5b647"}},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			got, _ := get(t, mux, tc.method, tc.target, nil)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestShellNamesHashedAssets checks that every asset the shell names exists and carries
// its content hash, so a browser never runs a stale script after an upgrade.
func TestShellNamesHashedAssets(t *testing.T) {
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	refs := regexp.MustCompile(`/ui/static/([a-z.]+)\?v=([0-9a-f]+)"`).FindAllStringSubmatch(string(h.shell), -1)
	var got []string
	for _, m := range refs {
		a, ok := h.assets[m[1]]
		if !ok {
			t.Errorf("shell names missing asset %s", m[1])
			continue
		}
		if `"`+m[2]+`"` != a.etag {
			t.Errorf("shell names %s?v=%s, its hash is %s", m[1], m[2], a.etag)
		}
		got = append(got, m[1])
	}
	if diff := cmp.Diff([]string{"style.css", "app.js"}, got); diff != "" {
		t.Errorf("hashed assets in the shell (-want +got):\n%s", diff)
	}
}

// TestModulesResolve checks that every module import names an embedded file: a typo
// would leave the page blank only in a browser.
func TestModulesResolve(t *testing.T) {
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	imp := regexp.MustCompile(`(?m)^import .* from '\./([a-z]+\.js)';$`)
	n := 0
	for name, a := range h.assets {
		for _, m := range imp.FindAllStringSubmatch(string(a.body), -1) {
			n++
			if _, ok := h.assets[m[1]]; !ok {
				t.Errorf("%s imports ./%s, which is not embedded", name, m[1])
			}
		}
	}
	if n == 0 {
		t.Fatal("found no module imports; the pattern no longer matches the sources")
	}
}

// TestOffline checks that no asset refers to another origin: the UI must work with no
// internet access and leak nothing to third parties.
func TestOffline(t *testing.T) {
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	// The SVG namespace is a name, not a fetch.
	allowed := "http://www.w3.org/2000/svg"
	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	for name, a := range h.assets {
		body := strings.ReplaceAll(string(a.body), allowed, "")
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "//") {
				continue // a comment
			}
			if m := url.FindString(line); m != "" {
				t.Errorf("%s refers to %s: %q", name, m, strings.TrimSpace(line))
			}
		}
	}
}

func TestAssetCaching(t *testing.T) {
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	mux := newMux(t)
	etag := h.assets["app.js"].etag
	v := strings.Trim(etag, `"`)
	type caching struct {
		Status          int
		CacheControl    string
		ContentEncoding string
		ETag            string
	}
	tests := []struct {
		name   string
		target string
		hdr    map[string]string
		want   caching
	}{
		{"hashed", "/ui/static/app.js?v=" + v, nil, caching{200, "public, max-age=31536000, immutable", "", etag}},
		{"unhashed", "/ui/static/app.js", nil, caching{200, "no-cache", "", etag}},
		{"stale hash", "/ui/static/app.js?v=0000", nil, caching{200, "no-cache", "", etag}},
		{"gzip", "/ui/static/app.js?v=" + v, map[string]string{"Accept-Encoding": "br, gzip"}, caching{200, "public, max-age=31536000, immutable", "gzip", etag}},
		{"gzip refused", "/ui/static/app.js", map[string]string{"Accept-Encoding": "gzip;q=0"}, caching{200, "no-cache", "", etag}},
		{"revalidated", "/ui/static/app.js", map[string]string{"If-None-Match": etag}, caching{304, "no-cache", "", etag}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, rec := get(t, mux, "GET", tc.target, tc.hdr)
			got := caching{rec.Code, rec.Header().Get("Cache-Control"), rec.Header().Get("Content-Encoding"), rec.Header().Get("ETag")}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if got.ContentEncoding == "gzip" {
				zr, err := gzip.NewReader(rec.Body)
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(zr)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b, h.assets["app.js"].body) {
					t.Error("gzipped body does not inflate to the asset")
				}
			}
		})
	}
}

func TestPageHeaders(t *testing.T) {
	_, rec := get(t, newMux(t), "GET", "/runs/r1", nil)
	csp := rec.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "style-src 'self'", "object-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if got := rec.Header().Get("Cache-Control"); got != "no-cache" {
		t.Errorf("shell Cache-Control = %q, want no-cache (it names the current asset hashes)", got)
	}
}
