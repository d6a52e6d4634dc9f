package handler

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/pipefn/pipefn/shared/api"
)

// Objects reads artifacts' bytes for downloads. Presign returns a signed link for stores
// that have them (S3) and an error for those that do not (local files), which are then
// streamed through this function.
type Objects interface {
	Get(ctx context.Context, uri string) (io.ReadCloser, error)
	Presign(ctx context.Context, uri string, ttl time.Duration) (string, error)
}

// PresignTTL is how long a signed download link stays valid.
const PresignTTL = 15 * time.Minute

// downloadURL is where the artifact's bytes can be fetched: a signed link where the store
// has them, else this function's own :download route. Either way only for an artifact the
// caller's team already sees (the caller looked it up in the team's graph).
func (h *Handler) downloadURL(ctx context.Context, id, uri string) string {
	if h.Objects == nil || !h.allowed(uri) {
		return ""
	}
	if u, err := h.Objects.Presign(ctx, uri, PresignTTL); err == nil {
		return u
	}
	return "/apis/v2beta1/artifacts/" + url.PathEscape(id) + ":download"
}

// allowed reports whether uri lies under one of the roots downloads are served from, so
// that a forged record can never make this function read an arbitrary file.
func (h *Handler) allowed(uri string) bool {
	if len(h.DownloadRoots) == 0 {
		return false
	}
	clean := uri
	if u, err := url.Parse(uri); err == nil && u.Scheme == "file" {
		clean = "file://" + path.Clean(u.Path)
	}
	for _, root := range h.DownloadRoots {
		root = strings.TrimSuffix(root, "/") + "/"
		if strings.HasPrefix(clean, root) {
			return true
		}
	}
	return false
}

// download streams one artifact of the caller's team.
func (h *Handler) download(w http.ResponseWriter, r *http.Request, team, id string) {
	d, err := h.store.GetArtifact(r.Context(), team, id)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if h.Objects == nil || !h.allowed(d.Artifact.URI) {
		h.writeError(w, r, api.Errorf(api.KindFailedPrecondition, "artifact %s cannot be downloaded through pipefn (%s)", id, d.Artifact.URI))
		return
	}
	rc, err := h.Objects.Get(r.Context(), d.Artifact.URI)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return
		}
		h.writeError(w, r, api.Errorf(api.KindNotFound, "artifact %s: the stored object is gone", id))
		return
	}
	defer rc.Close()
	name := d.Artifact.Name
	if name == "" {
		name = id
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if _, err := io.Copy(w, rc); err != nil {
		h.log.Warn("download interrupted", "artifact", id, "err", err)
	}
}
