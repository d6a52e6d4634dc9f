package launch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pipefn/pipefn/shared/artifacts"
)

// A directory artifact (a program that wrote a directory at its output path,
// as KFP allows) is stored file by file under the artifact URI plus a
// manifest at <uri>/ManifestName listing them. The Store interface has no
// listing, and the manifest lets a consumer download exactly what was
// produced from any store.
const ManifestName = ".pipefn-manifest.json"

// manifest lists the files of a directory artifact, sorted by path.
type manifest struct {
	Files []manifestFile `json:"files"`
}

type manifestFile struct {
	Path   string `json:"path"` // slash-separated, relative to the artifact URI
	Size   int64  `json:"size"`
	Digest string `json:"digest"`
}

func uploadFile(ctx context.Context, store artifacts.Store, local, uri string) (artifacts.Info, error) {
	f, err := os.Open(local)
	if err != nil {
		return artifacts.Info{}, err
	}
	defer f.Close()
	return store.Put(ctx, uri, f)
}

// uploadDir stores every regular file below dir and then the manifest; the
// returned Info has the total size and the manifest's digest, which
// identifies the directory's content.
func uploadDir(ctx context.Context, store artifacts.Store, dir, uri string) (artifacts.Info, error) {
	var m manifest
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file (links and devices are not uploaded)", p)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == ManifestName {
			return fmt.Errorf("%s: the name %s is reserved", p, ManifestName)
		}
		info, err := uploadFile(ctx, store, p, artifacts.Join(uri, rel))
		if err != nil {
			return err
		}
		m.Files = append(m.Files, manifestFile{Path: rel, Size: info.Size, Digest: info.Digest})
		total += info.Size
		return nil
	})
	if err != nil {
		return artifacts.Info{}, fmt.Errorf("upload directory %s: %w", dir, err)
	}
	slices.SortFunc(m.Files, func(a, b manifestFile) int { return strings.Compare(a.Path, b.Path) })
	b, err := json.Marshal(m)
	if err != nil {
		return artifacts.Info{}, err
	}
	if _, err := store.Put(ctx, artifacts.Join(uri, ManifestName), strings.NewReader(string(b))); err != nil {
		return artifacts.Info{}, fmt.Errorf("upload directory %s: manifest: %w", dir, err)
	}
	sum := sha256.Sum256(b)
	return artifacts.Info{URI: uri, Size: total, Digest: "sha256:" + hex.EncodeToString(sum[:])}, nil
}

// download fetches the artifact at uri to local: a single object, or, when
// there is no object but a manifest, the directory it lists.
func download(ctx context.Context, store artifacts.Store, uri, local string) error {
	rc, err := store.Get(ctx, uri)
	if err != nil {
		mrc, merr := store.Get(ctx, artifacts.Join(uri, ManifestName))
		if merr != nil {
			return err // the object's own error is the informative one
		}
		defer mrc.Close()
		return downloadDir(ctx, store, uri, local, mrc)
	}
	defer rc.Close()
	return writeFile(local, rc)
}

func downloadDir(ctx context.Context, store artifacts.Store, uri, local string, mr io.Reader) error {
	var m manifest
	if err := json.NewDecoder(io.LimitReader(mr, 64<<20)).Decode(&m); err != nil {
		return fmt.Errorf("%s: manifest: %w", uri, err)
	}
	for _, f := range m.Files {
		clean := path.Clean(f.Path)
		// The manifest is data from storage: refuse paths that escape local.
		if f.Path == "" || path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			return fmt.Errorf("%s: manifest lists unsafe path %q", uri, f.Path)
		}
		rc, err := store.Get(ctx, artifacts.Join(uri, clean))
		if err != nil {
			return err
		}
		err = writeFile(filepath.Join(local, filepath.FromSlash(clean)), rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return os.MkdirAll(local, 0o755)
}

func writeFile(local string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return err
	}
	f, err := os.Create(local)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", local, err)
	}
	return f.Close()
}
