// Package ui serves pipefn's web UI: one HTML shell, a style sheet and a few plain
// JavaScript modules, all embedded in the binary so that the UI works offline and needs no
// build step. The pages talk only to the public REST API (/apis/v2beta1/...), with the
// token the user sets in the browser, so the UI shows exactly what the CLI would.
package ui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// Pages are the UI's shareable addresses; each serves the same shell and the JavaScript
// router draws the page from the address. None of them is under /apis/.
var Pages = []string{
	"/{$}",
	"/runs/{run_id}",
	"/pipelines",
	"/pipelines/{pipeline_id}",
	"/artifacts/{artifact_id}/lineage",
	"/recurringruns",
	"/experiments",
	"/compare",
}

// StaticPrefix is where the assets are served; their names carry a content hash in the
// query string, so they may be cached for long.
const StaticPrefix = "/ui/static/"

// asset is one embedded file, ready to serve.
type asset struct {
	body  []byte
	gz    []byte // body gzipped, served to clients that accept it
	ctype string
	etag  string
}

// Handler serves the UI's pages and assets.
type Handler struct {
	assets map[string]asset
	shell  []byte
}

// New reads the embedded assets once. It fails only if the embedded tree is broken,
// which a test catches.
func New() (*Handler, error) {
	h := &Handler{assets: map[string]asset{}}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if strings.HasSuffix(p, ".js") {
			// Module scripts need a JavaScript type; some systems' mime tables lack it.
			ct = "text/javascript; charset=utf-8"
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		if _, err := zw.Write(b); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		h.assets[strings.TrimPrefix(p, "static/")] = asset{body: b, gz: gz.Bytes(), ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	shell, ok := h.assets["index.html"]
	if !ok {
		return nil, fs.ErrNotExist
	}
	// The shell names its assets with their hashes so a new binary never runs old scripts.
	body := shell.body
	for name, a := range h.assets {
		tag := strings.Trim(a.etag, `"`)
		body = bytes.ReplaceAll(body, []byte(StaticPrefix+name+`"`), []byte(StaticPrefix+name+"?v="+tag+`"`))
	}
	h.shell = body
	return h, nil
}

// Routes mounts the UI on mux: the page addresses (GET) and the assets. The assets are
// compiled in, so New fails only on a broken build (a test catches that); should it, the
// pages answer 500 with the reason rather than the process failing to start.
func Routes(mux *http.ServeMux) {
	h, err := New()
	if err != nil {
		broken := func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "pipefn web UI: embedded assets unreadable: "+err.Error(), http.StatusInternalServerError)
		}
		for _, p := range Pages {
			mux.HandleFunc("GET "+p, broken)
		}
		return
	}
	h.Routes(mux)
}

// Routes mounts h on mux.
func (h *Handler) Routes(mux *http.ServeMux) {
	for _, p := range Pages {
		mux.HandleFunc("GET "+p, h.page)
	}
	mux.HandleFunc("GET "+StaticPrefix+"{name...}", h.asset)
}

// page serves the shell; the client-side router reads the address.
func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Cache-Control", "no-cache")
	// Everything comes from this origin; nothing is fetched from the internet.
	hdr.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(h.shell))
}

func (h *Handler) asset(w http.ResponseWriter, r *http.Request) {
	a, ok := h.assets[r.PathValue("name")]
	if !ok || r.PathValue("name") == "index.html" {
		http.NotFound(w, r)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", a.ctype)
	hdr.Set("ETag", a.etag)
	hdr.Set("X-Content-Type-Options", "nosniff")
	if r.URL.Query().Get("v") == strings.Trim(a.etag, `"`) {
		hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hdr.Set("Cache-Control", "no-cache")
	}
	hdr.Set("Vary", "Accept-Encoding")
	if match := r.Header.Get("If-None-Match"); match != "" && match == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.body
	if acceptsGzip(r) {
		hdr.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// acceptsGzip reports whether the client takes gzip (assets are small text; gzip
// roughly quarters the page weight).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
