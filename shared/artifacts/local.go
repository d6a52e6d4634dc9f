package artifacts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
)

// Local stores artifacts as files addressed by file:// URIs. Writes are atomic:
// data goes to a temporary file in the target directory that is renamed into
// place only when complete, so readers never see a partial artifact.
type Local struct{}

// NewLocal returns a Local store.
func NewLocal() *Local { return &Local{} }

// LocalPath returns the filesystem path of a file:// URI.
func LocalPath(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("artifacts: %q is not a URI: %w", uri, err)
	}
	if u.Scheme != "file" {
		return "", fmt.Errorf("artifacts: %q is not a file:// URI", uri)
	}
	if u.Host != "" && u.Host != "localhost" {
		return "", fmt.Errorf("artifacts: %q names host %q; file:// URIs must be local (file:///path)", uri, u.Host)
	}
	if u.Path == "" || !filepath.IsAbs(u.Path) {
		return "", fmt.Errorf("artifacts: %q has no absolute path", uri)
	}
	return filepath.Clean(u.Path), nil
}

// FileURI returns the file:// URI of an absolute path.
func FileURI(path string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(path)}).String()
}

// Put implements Store.
func (l *Local) Put(ctx context.Context, uri string, r io.Reader) (Info, error) {
	path, err := LocalPath(uri)
	if err != nil {
		return Info{}, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return Info{}, fmt.Errorf("artifacts: put %s: %w", uri, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return Info{}, fmt.Errorf("artifacts: put %s: %w", uri, err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	d := newDigestWriter()
	if _, err := io.Copy(io.MultiWriter(tmp, d), ctxReader{ctx, r}); err != nil {
		return Info{}, fmt.Errorf("artifacts: put %s: %w", uri, err)
	}
	if err := tmp.Sync(); err != nil {
		return Info{}, fmt.Errorf("artifacts: put %s: sync: %w", uri, err)
	}
	if err := tmp.Close(); err != nil {
		return Info{}, fmt.Errorf("artifacts: put %s: %w", uri, err)
	}
	// CreateTemp makes 0600 files; artifacts are shared data, not secrets.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return Info{}, fmt.Errorf("artifacts: put %s: %w", uri, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return Info{}, fmt.Errorf("artifacts: put %s: %w", uri, err)
	}
	done = true
	return Info{URI: uri, Size: d.n, Digest: d.digest()}, nil
}

// Get implements Store.
func (l *Local) Get(ctx context.Context, uri string) (io.ReadCloser, error) {
	path, err := LocalPath(uri)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("artifacts: get %s: %w", uri, localNotFound(err))
	}
	if st, err := f.Stat(); err == nil && st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("artifacts: get %s: is a directory", uri)
	}
	return f, nil
}

// Stat implements Store. Local files carry no stored digest, so Stat hashes
// the file; artifacts are read once per consumer, which makes this affordable.
func (l *Local) Stat(ctx context.Context, uri string) (Info, error) {
	path, err := LocalPath(uri)
	if err != nil {
		return Info{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return Info{}, fmt.Errorf("artifacts: stat %s: %w", uri, localNotFound(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Info{}, fmt.Errorf("artifacts: stat %s: %w", uri, err)
	}
	if st.IsDir() {
		return Info{}, fmt.Errorf("artifacts: stat %s: is a directory", uri)
	}
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, f}); err != nil {
		return Info{}, fmt.Errorf("artifacts: stat %s: %w", uri, err)
	}
	return Info{URI: uri, Size: st.Size(), Digest: "sha256:" + hex.EncodeToString(h.Sum(nil))}, nil
}

// localNotFound adds ErrNotExist to a missing-file error, keeping fs.ErrNotExist.
func localNotFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", ErrNotExist, err)
	}
	return err
}
