package artifacts

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"sync"
	"time"
)

// Router is a Store that serves every supported scheme, picking the backend
// by each URI's scheme. The launcher uses it because a task may read inputs
// from outside its pipeline root (an importer's file:// or s3:// URI). The S3
// client is built on first use, so a file-only run never loads AWS config.
type Router struct {
	local *Local
	s3opt S3Options

	mu    sync.Mutex
	s3    *S3
	s3err error
}

// NewRouter returns a Router whose S3 backend uses opts.
func NewRouter(opts S3Options) *Router { return &Router{local: NewLocal(), s3opt: opts} }

func (r *Router) pick(ctx context.Context, uri string) (Store, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("artifacts: %q is not a URI: %w", uri, err)
	}
	switch u.Scheme {
	case "file":
		return r.local, nil
	case "s3":
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.s3 == nil && r.s3err == nil {
			r.s3, r.s3err = NewS3(ctx, r.s3opt)
		}
		if r.s3err != nil {
			return nil, r.s3err
		}
		return r.s3, nil
	}
	return nil, fmt.Errorf("artifacts: %q: unsupported scheme %q (want file:// or s3://)", uri, u.Scheme)
}

// Put implements Store.
func (r *Router) Put(ctx context.Context, uri string, rd io.Reader) (Info, error) {
	s, err := r.pick(ctx, uri)
	if err != nil {
		return Info{}, err
	}
	return s.Put(ctx, uri, rd)
}

// Get implements Store.
func (r *Router) Get(ctx context.Context, uri string) (io.ReadCloser, error) {
	s, err := r.pick(ctx, uri)
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, uri)
}

// Stat implements Store.
func (r *Router) Stat(ctx context.Context, uri string) (Info, error) {
	s, err := r.pick(ctx, uri)
	if err != nil {
		return Info{}, err
	}
	return s.Stat(ctx, uri)
}

// ErrNoPresign says a URI's store cannot hand out signed links (file:// URIs): the
// caller serves the object itself.
var ErrNoPresign = fmt.Errorf("artifacts: this store has no signed download links")

// Presign returns a time-limited download link for an s3:// URI; for other schemes it
// returns ErrNoPresign.
func (r *Router) Presign(ctx context.Context, uri string, ttl time.Duration) (string, error) {
	s, err := r.pick(ctx, uri)
	if err != nil {
		return "", err
	}
	if s3, ok := s.(*S3); ok {
		return s3.Presign(ctx, uri, ttl)
	}
	return "", ErrNoPresign
}
