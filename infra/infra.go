// Package infra holds pipefn's deployment as plain manifests (kustomize layout, usable
// with `kubectl apply -k`) and renders one team's install from them without kustomize:
// the base, the backend's component, the team's namespace, labels and settings. The
// placeholder team name in the manifests is PlaceholderTeam.
package infra

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"sigs.k8s.io/yaml"
)

// Files are the manifests: base/, components/{tekton,argo}/, cluster/tekton/, overlays/.
//
//go:embed base components cluster overlays
var Files embed.FS

// PlaceholderTeam stands for the team in every manifest; rendering replaces it.
const PlaceholderTeam = "pipefn-team"

// DefaultRegistry and DefaultTag name the images the manifests use.
const (
	DefaultRegistry = "ghcr.io/pipefn"
	DefaultTag      = "latest"
)

// Options say whose install to render.
type Options struct {
	Team    string
	Backend string // tekton (default) or argo
	// Registry and Tag replace ghcr.io/pipefn and latest in image references.
	Registry string
	Tag      string
}

// clusterScoped are the kinds that take no namespace.
var clusterScoped = map[string]bool{"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true}

// kustomization is the part of a kustomization.yaml the renderer follows.
type kustomization struct {
	Resources  []string `json:"resources"`
	Components []string `json:"components"`
}

// Documents reads every object of a kustomization directory (its resources, in order,
// then its components'), recursing into directories named as resources.
func Documents(dir string) ([]map[string]any, error) {
	raw, err := fs.ReadFile(Files, path.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	var k kustomization
	if err := yaml.Unmarshal(raw, &k); err != nil {
		return nil, fmt.Errorf("%s/kustomization.yaml: %w", dir, err)
	}
	var out []map[string]any
	for _, r := range append(k.Resources, k.Components...) {
		p := path.Clean(path.Join(dir, r))
		if st, err := fs.Stat(Files, p); err == nil && st.IsDir() {
			docs, err := Documents(p)
			if err != nil {
				return nil, err
			}
			out = append(out, docs...)
			continue
		}
		b, err := fs.ReadFile(Files, p)
		if err != nil {
			return nil, err
		}
		docs, err := SplitYAML(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, docs...)
	}
	return out, nil
}

// SplitYAML decodes a multi-document YAML file into objects, skipping empty documents.
func SplitYAML(b []byte) ([]map[string]any, error) {
	var out []map[string]any
	for i, doc := range splitDocs(b) {
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		out = append(out, m)
	}
	return out, nil
}

func splitDocs(b []byte) [][]byte {
	var docs [][]byte
	var cur []byte
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if bytes.Equal(bytes.TrimRight(line, " \r\n"), []byte("---")) {
			docs = append(docs, cur)
			cur = nil
			continue
		}
		cur = append(cur, line...)
	}
	return append(docs, cur)
}

func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.SplitAfter(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
		}
	}
	return out
}

// checkTeam accepts what a team may be: a DNS-1123 label (it is a namespace).
func checkTeam(team string) error {
	if team == "" || len(team) > 63 {
		return fmt.Errorf("team %q: must be 1 to 63 characters", team)
	}
	for i, r := range team {
		ok := (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || (r == '-' && i > 0 && i < len(team)-1)
		if !ok {
			return fmt.Errorf("team %q: only lowercase letters, digits and inner '-' are allowed (it names a namespace)", team)
		}
	}
	return nil
}

// Render returns a team's install as one multi-document YAML stream: its Namespace, the
// base and the backend's component, with the team in namespaces, names, settings and
// labels, and images from opts.Registry:opts.Tag. Objects that name their own namespace
// (the Tekton route in pipefn-system) keep it.
func Render(opts Options) ([]byte, error) {
	objs, err := Objects(opts)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	for i, o := range objs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		b, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// Objects is Render before encoding.
func Objects(opts Options) ([]map[string]any, error) {
	if err := checkTeam(opts.Team); err != nil {
		return nil, err
	}
	if opts.Team == PlaceholderTeam {
		return nil, fmt.Errorf("team %q is the manifests' placeholder; choose another name", opts.Team)
	}
	if opts.Backend == "" {
		opts.Backend = "tekton"
	}
	if opts.Backend != "tekton" && opts.Backend != "argo" {
		return nil, fmt.Errorf("backend %q: want tekton or argo", opts.Backend)
	}
	if opts.Registry == "" {
		opts.Registry = DefaultRegistry
	}
	if opts.Tag == "" {
		opts.Tag = DefaultTag
	}
	base, err := Documents("base")
	if err != nil {
		return nil, err
	}
	comp, err := Documents("components/" + opts.Backend)
	if err != nil {
		return nil, err
	}
	ns := map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": opts.Team}}
	objs := append([]map[string]any{ns}, append(base, comp...)...)
	out := make([]map[string]any, 0, len(objs))
	for _, o := range objs {
		o, err := rewrite(o, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// rewrite applies the team's changes to one object.
func rewrite(o map[string]any, opts Options) (map[string]any, error) {
	// Replace the placeholder and the image coordinates in every string, through JSON so
	// that no value is missed.
	b, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	v = mapStrings(v, func(s string) string {
		s = strings.ReplaceAll(s, PlaceholderTeam, opts.Team)
		if strings.HasPrefix(s, DefaultRegistry+"/") && strings.HasSuffix(s, ":"+DefaultTag) {
			name := strings.TrimSuffix(strings.TrimPrefix(s, DefaultRegistry+"/"), ":"+DefaultTag)
			s = opts.Registry + "/" + name + ":" + opts.Tag
		}
		return s
	})
	o = v.(map[string]any)
	meta, _ := o["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		o["metadata"] = meta
	}
	kind, _ := o["kind"].(string)
	if _, has := meta["namespace"]; !has && !clusterScoped[kind] {
		meta["namespace"] = opts.Team
	}
	labels, _ := meta["labels"].(map[string]any)
	if labels == nil {
		labels = map[string]any{}
		meta["labels"] = labels
	}
	labels["app.kubernetes.io/part-of"] = "pipefn"
	labels["pipefn.dev/team"] = opts.Team
	if kind == "ConfigMap" && meta["name"] == "pipefn-config" {
		data, _ := o["data"].(map[string]any)
		if data == nil {
			return nil, fmt.Errorf("ConfigMap pipefn-config has no data")
		}
		data["PIPEFN_BACKEND"] = opts.Backend
	}
	return o, nil
}

func mapStrings(v any, f func(string) string) any {
	switch x := v.(type) {
	case string:
		return f(x)
	case map[string]any:
		for k, e := range x {
			x[k] = mapStrings(e, f)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = mapStrings(e, f)
		}
		return x
	}
	return v
}
