// Package artifacts stores task artifacts under a pipeline root. The root's URI
// scheme picks the backend: file:// for a local directory, s3:// for an
// S3-compatible object store. It is the only package that imports the AWS SDK.
package artifacts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/url"
	"strings"
)

// Info describes one stored object.
type Info struct {
	URI    string // the object's full URI (file:///..., s3://bucket/key)
	Size   int64  // bytes
	Digest string // "sha256:<hex>", empty when the backend does not know it
}

// Store reads and writes artifacts by URI. Implementations stream: no method
// holds a whole object in memory.
type Store interface {
	// Put writes r to uri, replacing any previous object, and returns its size
	// and sha256 digest.
	Put(ctx context.Context, uri string, r io.Reader) (Info, error)
	// Get opens the object at uri for reading. The caller closes it.
	Get(ctx context.Context, uri string) (io.ReadCloser, error)
	// Stat returns the object's size and, when recorded, its digest.
	Stat(ctx context.Context, uri string) (Info, error)
}

// Open returns the Store for the pipeline root root, chosen by its scheme.
// The store accepts URIs of the same scheme; for S3 any bucket may be named.
func Open(ctx context.Context, root string) (Store, error) {
	u, err := url.Parse(root)
	if err != nil {
		return nil, fmt.Errorf("artifacts: pipeline root %q is not a URI: %w", root, err)
	}
	switch u.Scheme {
	case "file":
		return NewLocal(), nil
	case "s3":
		return NewS3(ctx, S3Options{})
	case "":
		return nil, fmt.Errorf("artifacts: pipeline root %q has no scheme (want file:// or s3://)", root)
	default:
		return nil, fmt.Errorf("artifacts: pipeline root %q: unsupported scheme %q (want file:// or s3://)", root, u.Scheme)
	}
}

// Join appends slash-separated path elements to a root URI, keeping exactly
// one slash between them.
func Join(root string, elem ...string) string {
	out := strings.TrimRight(root, "/")
	for _, e := range elem {
		e = strings.Trim(e, "/")
		if e == "" {
			continue
		}
		out += "/" + e
	}
	return out
}

// digestWriter hashes what passes through it and counts the bytes.
type digestWriter struct {
	h hash.Hash
	n int64
}

func newDigestWriter() *digestWriter { return &digestWriter{h: sha256.New()} }

func (d *digestWriter) Write(p []byte) (int, error) {
	d.h.Write(p)
	d.n += int64(len(p))
	return len(p), nil
}

func (d *digestWriter) digest() string { return "sha256:" + hex.EncodeToString(d.h.Sum(nil)) }

// ctxReader fails reads once ctx is done so long copies stop on cancellation.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
