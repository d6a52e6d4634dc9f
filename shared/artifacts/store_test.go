package artifacts_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pipefn/pipefn/shared/artifacts"
	"github.com/pipefn/pipefn/shared/artifacts/s3test"
)

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func TestOpen(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	tests := []struct {
		root    string
		want    string // type name
		wantErr string
	}{
		{root: "file:///tmp/root", want: "*artifacts.Local"},
		{root: "s3://bucket/prefix", want: "*artifacts.S3"},
		{root: "gs://bucket/prefix", wantErr: `unsupported scheme "gs"`},
		{root: "/tmp/root", wantErr: "has no scheme"},
		{root: "://bad", wantErr: "is not a URI"},
	}
	for _, tt := range tests {
		t.Run(tt.root, func(t *testing.T) {
			st, err := artifacts.Open(context.Background(), tt.root)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Open(%q) error = %v, want one containing %q", tt.root, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := typeName(st); got != tt.want {
				t.Errorf("Open(%q) = %s, want %s", tt.root, got, tt.want)
			}
		})
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *artifacts.Local:
		return "*artifacts.Local"
	case *artifacts.S3:
		return "*artifacts.S3"
	}
	return "other"
}

func TestJoin(t *testing.T) {
	tests := []struct {
		root string
		elem []string
		want string
	}{
		{"s3://b/root", []string{"run", "task.1", "out"}, "s3://b/root/run/task.1/out"},
		{"s3://b/root/", []string{"/run/", "", "out"}, "s3://b/root/run/out"},
		{"file:///r", []string{"a/b"}, "file:///r/a/b"},
	}
	for _, tt := range tests {
		if got := artifacts.Join(tt.root, tt.elem...); got != tt.want {
			t.Errorf("Join(%q, %q) = %q, want %q", tt.root, tt.elem, got, tt.want)
		}
	}
}

func TestLocalPath(t *testing.T) {
	tests := []struct {
		uri, want, wantErr string
	}{
		{uri: "file:///a/b", want: "/a/b"},
		{uri: "file://localhost/a/../b", want: "/b"},
		{uri: "file://otherhost/a", wantErr: "must be local"},
		{uri: "s3://b/k", wantErr: "not a file:// URI"},
		{uri: "file:", wantErr: "no absolute path"},
	}
	for _, tt := range tests {
		got, err := artifacts.LocalPath(tt.uri)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("LocalPath(%q) error = %v, want %q", tt.uri, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("LocalPath(%q) = %q, %v; want %q", tt.uri, got, err, tt.want)
		}
	}
}

// storeContract exercises the Store interface; every backend must pass it.
func storeContract(t *testing.T, st artifacts.Store, root string) {
	ctx := context.Background()
	content := bytes.Repeat([]byte("pipefn artifact\n"), 1000)
	uri := artifacts.Join(root, "run-1", "train.0", "model")

	info, err := st.Put(ctx, uri, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	want := artifacts.Info{URI: uri, Size: int64(len(content)), Digest: digestOf(content)}
	if diff := cmp.Diff(want, info); diff != "" {
		t.Errorf("Put info (-want +got):\n%s", diff)
	}
	if got := readAll(t, st, uri); !bytes.Equal(got, content) {
		t.Errorf("Get returned %d bytes, want the %d put", len(got), len(content))
	}
	stat, err := st.Stat(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, stat); diff != "" {
		t.Errorf("Stat (-want +got):\n%s", diff)
	}

	// Overwrite with shorter content: no stale tail may remain.
	short := []byte("v2")
	if _, err := st.Put(ctx, uri, bytes.NewReader(short)); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, st, uri); !bytes.Equal(got, short) {
		t.Errorf("after overwrite Get = %q, want %q", got, short)
	}

	// Empty objects are valid artifacts.
	empty := artifacts.Join(root, "run-1", "empty")
	info, err = st.Put(ctx, empty, bytes.NewReader(nil))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(artifacts.Info{URI: empty, Size: 0, Digest: digestOf(nil)}, info); diff != "" {
		t.Errorf("empty Put (-want +got):\n%s", diff)
	}

	missing := artifacts.Join(root, "run-1", "nope")
	if _, err := st.Get(ctx, missing); !errors.Is(err, artifacts.ErrNotExist) {
		t.Errorf("Get(missing) error = %v, want ErrNotExist", err)
	}
	if _, err := st.Stat(ctx, missing); !errors.Is(err, artifacts.ErrNotExist) {
		t.Errorf("Stat(missing) error = %v, want ErrNotExist", err)
	}

	// A failing reader must not leave an object behind.
	broken := artifacts.Join(root, "run-1", "broken")
	_, err = st.Put(ctx, broken, io.MultiReader(bytes.NewReader(content), errReader{}))
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Put(failing reader) error = %v, want the reader's error", err)
	}
	if _, err := st.Stat(ctx, broken); !errors.Is(err, artifacts.ErrNotExist) {
		t.Errorf("after a failed Put, Stat error = %v, want ErrNotExist", err)
	}

	// Cancellation stops a Put.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := st.Put(cctx, artifacts.Join(root, "run-1", "cancelled"), bytes.NewReader(content)); !errors.Is(err, context.Canceled) {
		t.Errorf("Put(cancelled ctx) error = %v, want context.Canceled", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func readAll(t *testing.T, st artifacts.Store, uri string) []byte {
	t.Helper()
	rc, err := st.Get(context.Background(), uri)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLocalContract(t *testing.T) {
	dir := t.TempDir()
	storeContract(t, artifacts.NewLocal(), artifacts.FileURI(dir))
	// Atomic writes leave no temporary files behind, even after failures.
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLocalFileMode(t *testing.T) {
	dir := t.TempDir()
	uri := artifacts.FileURI(filepath.Join(dir, "a", "b"))
	if _, err := artifacts.NewLocal().Put(context.Background(), uri, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, want 0644", st.Mode().Perm())
	}
}

func TestLocalRejectsDirectory(t *testing.T) {
	dir := t.TempDir()
	if _, err := artifacts.NewLocal().Get(context.Background(), artifacts.FileURI(dir)); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("Get(dir) error = %v, want 'is a directory'", err)
	}
}

func TestS3Contract(t *testing.T) {
	srv := s3test.Start(t)
	st := srv.Store(t, "pipefn", artifacts.S3Options{})
	storeContract(t, st, "s3://pipefn/root")
	uri := "s3://nobucket/k"
	if _, err := st.Put(context.Background(), uri, strings.NewReader("x")); err == nil {
		t.Errorf("Put to a missing bucket succeeded")
	}
	if _, err := st.Get(context.Background(), "s3://pipefn"); err == nil || !strings.Contains(err.Error(), "no object key") {
		t.Errorf("Get(bucket only) error = %v, want 'no object key'", err)
	}
}

func TestS3Multipart(t *testing.T) {
	srv := s3test.Start(t)
	st := srv.Store(t, "pipefn", artifacts.S3Options{PartSize: 5 << 20})
	content := make([]byte, 12<<20+123) // three parts, the last one short
	for i := range content {
		content[i] = byte(i * 7)
	}
	uri := "s3://pipefn/big/model.bin"
	info, err := st.Put(context.Background(), uri, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	want := artifacts.Info{URI: uri, Size: int64(len(content)), Digest: digestOf(content)}
	if diff := cmp.Diff(want, info); diff != "" {
		t.Errorf("Put (-want +got):\n%s", diff)
	}
	stat, err := st.Stat(context.Background(), uri)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, stat); diff != "" {
		t.Errorf("Stat (-want +got):\n%s", diff)
	}
	if got := readAll(t, st, uri); !bytes.Equal(got, content) {
		t.Errorf("multipart object differs from what was put (%d vs %d bytes)", len(got), len(content))
	}
}

func TestS3Presign(t *testing.T) {
	srv := s3test.Start(t)
	st := srv.Store(t, "pipefn", artifacts.S3Options{})
	uri := "s3://pipefn/shared/report.html"
	if _, err := st.Put(context.Background(), uri, strings.NewReader("<h1>hi</h1>")); err != nil {
		t.Fatal(err)
	}
	link, err := st.Presign(context.Background(), uri, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(link) // no credentials: the signature is the permission
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "<h1>hi</h1>" {
		t.Errorf("GET presigned = %d %q, want 200 and the object", resp.StatusCode, body)
	}
	if _, err := st.Presign(context.Background(), uri, 0); err == nil {
		t.Errorf("Presign with ttl 0 succeeded")
	}
}

func TestS3SpoolsInTempDir(t *testing.T) {
	srv := s3test.Start(t)
	spool := t.TempDir()
	st := srv.Store(t, "pipefn", artifacts.S3Options{TempDir: spool})
	if _, err := st.Put(context.Background(), "s3://pipefn/x", strings.NewReader("data")); err != nil {
		t.Fatal(err)
	}
	left, _ := os.ReadDir(spool)
	if len(left) != 0 {
		t.Errorf("spool files left behind: %v", left)
	}
}

func TestRouter(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	s3 := srv.Store(t, "routed", artifacts.S3Options{})
	_ = s3
	r := artifacts.NewRouter(artifacts.S3Options{})
	ctx := context.Background()
	fileURI := artifacts.FileURI(filepath.Join(t.TempDir(), "f"))
	for _, uri := range []string{fileURI, "s3://routed/k"} {
		if _, err := r.Put(ctx, uri, strings.NewReader("routed "+uri)); err != nil {
			t.Fatalf("Put(%s): %v", uri, err)
		}
		if got := string(readAll(t, r, uri)); got != "routed "+uri {
			t.Errorf("Get(%s) = %q", uri, got)
		}
	}
	// The S3 object really is on the server's disk, not in the local tree.
	if b, err := os.ReadFile(filepath.Join(srv.Dir, "routed", "k")); err != nil || string(b) != "routed s3://routed/k" {
		t.Errorf("object on server disk = %q, %v", b, err)
	}
	if _, err := r.Get(ctx, "gs://b/k"); err == nil || !strings.Contains(err.Error(), "unsupported scheme") {
		t.Errorf("Get(gs://) error = %v", err)
	}
}

// Benchmarks: 64 MiB through each store, reported as MB/s by -benchtime and
// SetBytes; BenchmarkCopyBaseline is the same file through cp(1).
const benchSize = 64 << 20

func benchFile(b *testing.B) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), "src")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	for range benchSize / len(buf) {
		f.Write(buf)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return p
}

func benchStore(b *testing.B, st artifacts.Store, root string) {
	src := benchFile(b)
	ctx := context.Background()
	uri := artifacts.Join(root, "bench", "obj")
	b.Run("upload", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			f, _ := os.Open(src)
			if _, err := st.Put(ctx, uri, f); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
	b.Run("download", func(b *testing.B) {
		b.SetBytes(benchSize)
		dst := filepath.Join(b.TempDir(), "dst")
		for b.Loop() {
			rc, err := st.Get(ctx, uri)
			if err != nil {
				b.Fatal(err)
			}
			f, _ := os.Create(dst)
			if _, err := io.Copy(f, rc); err != nil {
				b.Fatal(err)
			}
			rc.Close()
			f.Close()
		}
	})
}

func BenchmarkLocal(b *testing.B) {
	benchStore(b, artifacts.NewLocal(), artifacts.FileURI(b.TempDir()))
}

func BenchmarkS3(b *testing.B) {
	srv := s3test.Start(b)
	benchStore(b, srv.Store(b, "bench", artifacts.S3Options{}), "s3://bench")
}

func BenchmarkCopyBaseline(b *testing.B) {
	src := benchFile(b)
	dst := filepath.Join(b.TempDir(), "dst")
	b.SetBytes(benchSize)
	for b.Loop() {
		if out, err := exec.Command("cp", src, dst).CombinedOutput(); err != nil {
			b.Fatalf("cp: %v %s", err, out)
		}
	}
}
