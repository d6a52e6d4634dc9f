// Package infra_test checks every manifest in infra/ and every rendered team install
// against the upstream API types: Knative Services through servingv1's own defaulting and
// validation, Kubernetes objects through k8s.io/api with strict decoding, and the
// Knative Eventing objects (whose Go types pipefn does not link) through strict decoding
// into their v1 shapes plus the checks their webhooks make.
package infra_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/pipefn/pipefn/infra"
	"github.com/pipefn/pipefn/shared/compile/tekton"
	"github.com/pipefn/pipefn/shared/events"
)

// strict decodes an object into v, refusing fields v does not know: a misspelt field in
// a manifest would otherwise be silently dropped by the API server.
func strict(o map[string]any, v any) error {
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// Minimal Knative Eventing v1 shapes (eventing.knative.dev/v1, sources.knative.dev/v1).
type (
	meta struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace,omitempty"`
		Labels      map[string]string `json:"labels,omitempty"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	kref struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Name       string `json:"name"`
		Namespace  string `json:"namespace,omitempty"`
	}
	destination struct {
		Ref *kref  `json:"ref,omitempty"`
		URI string `json:"uri,omitempty"`
	}
	ceOverrides struct {
		Extensions map[string]string `json:"extensions,omitempty"`
	}
	filter map[string]any
	broker struct {
		APIVersion string    `json:"apiVersion"`
		Kind       string    `json:"kind"`
		Metadata   meta      `json:"metadata"`
		Spec       *struct{} `json:"spec,omitempty"`
	}
	trigger struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   meta   `json:"metadata"`
		Spec       struct {
			Broker string `json:"broker"`
			Filter *struct {
				Attributes map[string]string `json:"attributes"`
			} `json:"filter,omitempty"`
			Filters    []filter    `json:"filters,omitempty"`
			Subscriber destination `json:"subscriber"`
		} `json:"spec"`
	}
	pingSource struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   meta   `json:"metadata"`
		Spec       struct {
			Schedule    string       `json:"schedule"`
			Timezone    string       `json:"timezone,omitempty"`
			ContentType string       `json:"contentType,omitempty"`
			Data        string       `json:"data,omitempty"`
			Sink        destination  `json:"sink"`
			CEOverrides *ceOverrides `json:"ceOverrides,omitempty"`
		} `json:"spec"`
	}
	sinkBinding struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   meta   `json:"metadata"`
		Spec       struct {
			Subject struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Name       string `json:"name,omitempty"`
				Selector   *struct {
					MatchLabels      map[string]string `json:"matchLabels,omitempty"`
					MatchExpressions []struct {
						Key      string   `json:"key"`
						Operator string   `json:"operator"`
						Values   []string `json:"values,omitempty"`
					} `json:"matchExpressions,omitempty"`
				} `json:"selector,omitempty"`
			} `json:"subject"`
			Sink        destination  `json:"sink"`
			CEOverrides *ceOverrides `json:"ceOverrides,omitempty"`
		} `json:"spec"`
	}
	apiServerSource struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   meta   `json:"metadata"`
		Spec       struct {
			Mode               string `json:"mode"`
			ServiceAccountName string `json:"serviceAccountName"`
			Resources          []struct {
				APIVersion string         `json:"apiVersion"`
				Kind       string         `json:"kind"`
				Selector   map[string]any `json:"selector,omitempty"`
			} `json:"resources"`
			Sink        destination  `json:"sink"`
			CEOverrides *ceOverrides `json:"ceOverrides,omitempty"`
		} `json:"spec"`
	}
)

// install is a set of objects checked together, so that references resolve.
type install struct {
	name string
	objs []map[string]any
}

func name(o map[string]any) string {
	m, _ := o["metadata"].(map[string]any)
	n, _ := m["name"].(string)
	return n
}

func kindName(o map[string]any) string { return fmt.Sprintf("%s/%s", o["kind"], name(o)) }

// checkDNS checks a name as Kubernetes does for the kind.
func checkDNS(o map[string]any) []string {
	var errs []string
	switch o["kind"] {
	case "Namespace", "Service":
		errs = validation.IsDNS1123Label(name(o))
	default:
		errs = validation.IsDNS1123Subdomain(name(o))
	}
	return errs
}

func checkDestination(what string, d destination, services map[string]bool) error {
	switch {
	case d.Ref == nil && d.URI == "":
		return fmt.Errorf("%s: neither ref nor uri", what)
	case d.Ref != nil && d.Ref.Kind == "Service" && d.Ref.APIVersion == "serving.knative.dev/v1" && !services[d.Ref.Name]:
		return fmt.Errorf("%s: Knative Service %q is not part of the install", what, d.Ref.Name)
	case d.Ref != nil && d.Ref.Kind == "Broker" && d.Ref.Name == "":
		return fmt.Errorf("%s: Broker without a name", what)
	}
	return nil
}

var filterDialects = []string{"exact", "prefix", "suffix", "all", "any", "not", "cesql"}

func checkFilter(f filter) error {
	if len(f) != 1 {
		return fmt.Errorf("filter %v: want exactly one dialect", f)
	}
	for k, v := range f {
		if !slices.Contains(filterDialects, k) {
			return fmt.Errorf("filter dialect %q: want one of %v", k, filterDialects)
		}
		switch k {
		case "not":
			m, _ := v.(map[string]any)
			return checkFilter(filter(m))
		case "all", "any":
			l, _ := v.([]any)
			for _, e := range l {
				m, _ := e.(map[string]any)
				if err := checkFilter(filter(m)); err != nil {
					return err
				}
			}
		case "cesql":
			if s, _ := v.(string); s == "" {
				return fmt.Errorf("empty cesql filter")
			}
		default:
			m, _ := v.(map[string]any)
			if len(m) == 0 {
				return fmt.Errorf("%s filter without attributes", k)
			}
		}
	}
	return nil
}

// check validates one install and returns its problems.
func check(in install) []string {
	var problems []string
	ctx := apis.WithinCreate(context.Background())
	services, accounts, roles := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, o := range in.objs {
		switch o["kind"] {
		case "Service":
			services[name(o)] = true
		case "ServiceAccount":
			accounts[name(o)] = true
		case "Role":
			roles[name(o)] = true
		}
	}
	seen := map[string]bool{}
	for _, o := range in.objs {
		id := kindName(o)
		ns, _ := o["metadata"].(map[string]any)["namespace"].(string)
		if seen[ns+"/"+id] {
			problems = append(problems, fmt.Sprintf("%s: %s appears twice", in.name, id))
		}
		seen[ns+"/"+id] = true
		if errs := checkDNS(o); len(errs) > 0 {
			problems = append(problems, fmt.Sprintf("%s: %s: name: %v", in.name, id, errs))
		}
		var err error
		switch fmt.Sprint(o["apiVersion"], " ", o["kind"]) {
		case "serving.knative.dev/v1 Service":
			var s servingv1.Service
			if err = strict(o, &s); err == nil {
				s.SetDefaults(ctx)
				if fe := s.Validate(ctx); fe != nil {
					err = fe
				}
				if sa := s.Spec.Template.Spec.ServiceAccountName; sa != "" && !accounts[sa] {
					err = fmt.Errorf("service account %q is not part of the install", sa)
				}
			}
		case "v1 ConfigMap":
			var c corev1.ConfigMap
			err = strict(o, &c)
			for k := range c.Data {
				if errs := validation.IsConfigMapKey(k); len(errs) > 0 {
					err = fmt.Errorf("key %q: %v", k, errs)
				}
			}
		case "v1 ServiceAccount":
			err = strict(o, &corev1.ServiceAccount{})
		case "v1 Namespace":
			err = strict(o, &corev1.Namespace{})
		case "rbac.authorization.k8s.io/v1 Role":
			var r rbacv1.Role
			if err = strict(o, &r); err == nil && len(r.Rules) == 0 {
				err = fmt.Errorf("no rules")
			}
			for _, rule := range r.Rules {
				if len(rule.Verbs) == 0 || len(rule.Resources) == 0 {
					err = fmt.Errorf("rule %+v: verbs and resources are required", rule)
				}
			}
		case "rbac.authorization.k8s.io/v1 RoleBinding":
			var rb rbacv1.RoleBinding
			if err = strict(o, &rb); err == nil {
				if rb.RoleRef.Kind != "Role" || !roles[rb.RoleRef.Name] || rb.RoleRef.APIGroup != rbacv1.GroupName {
					err = fmt.Errorf("roleRef %+v does not name a Role of the install", rb.RoleRef)
				}
				for _, s := range rb.Subjects {
					if s.Kind != rbacv1.ServiceAccountKind || !accounts[s.Name] {
						err = fmt.Errorf("subject %+v is not a ServiceAccount of the install", s)
					}
				}
			}
		case "eventing.knative.dev/v1 Broker":
			err = strict(o, &broker{})
		case "eventing.knative.dev/v1 Trigger":
			var tr trigger
			if err = strict(o, &tr); err == nil {
				switch {
				case tr.Spec.Broker == "":
					err = fmt.Errorf("spec.broker is required")
				case tr.Spec.Filter != nil && len(tr.Spec.Filters) > 0:
					err = fmt.Errorf("filter and filters are exclusive")
				default:
					err = checkDestination("subscriber", tr.Spec.Subscriber, services)
				}
				for _, f := range tr.Spec.Filters {
					if e := checkFilter(f); e != nil {
						err = e
					}
				}
			}
		case "sources.knative.dev/v1 PingSource":
			var p pingSource
			if err = strict(o, &p); err == nil {
				if n := len(strings.Fields(p.Spec.Schedule)); n != 5 {
					err = fmt.Errorf("schedule %q: want 5 cron fields", p.Spec.Schedule)
				} else {
					err = checkDestination("sink", p.Spec.Sink, services)
				}
			}
		case "sources.knative.dev/v1 SinkBinding":
			var sb sinkBinding
			if err = strict(o, &sb); err == nil {
				if sb.Spec.Subject.Name == "" && sb.Spec.Subject.Selector == nil {
					err = fmt.Errorf("subject needs a name or a selector")
				} else {
					err = checkDestination("sink", sb.Spec.Sink, services)
				}
			}
		case "sources.knative.dev/v1 ApiServerSource":
			var a apiServerSource
			if err = strict(o, &a); err == nil {
				switch {
				case a.Spec.Mode != "Resource" && a.Spec.Mode != "Reference":
					err = fmt.Errorf("mode %q: want Resource or Reference", a.Spec.Mode)
				case len(a.Spec.Resources) == 0:
					err = fmt.Errorf("no resources")
				case !accounts[a.Spec.ServiceAccountName]:
					err = fmt.Errorf("service account %q is not part of the install", a.Spec.ServiceAccountName)
				default:
					err = checkDestination("sink", a.Spec.Sink, services)
				}
			}
		default:
			err = fmt.Errorf("no validation for apiVersion %v kind %v", o["apiVersion"], o["kind"])
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s: %v", in.name, id, err))
		}
	}
	return problems
}

// installs are what gets applied: each team install (rendered and the example overlay's
// inputs) and the cluster-wide Tekton config.
func installs(t *testing.T) []install {
	var out []install
	for _, backend := range []string{"tekton", "argo"} {
		objs, err := infra.Objects(infra.Options{Team: "ml", Backend: backend})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, install{"rendered " + backend, objs})
	}
	for _, dir := range []string{"overlays/example-team", "cluster/tekton"} {
		objs, err := infra.Documents(dir)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, install{dir, objs})
	}
	// The argo component with the base, as an overlay naming it would apply it.
	base, _ := infra.Documents("base")
	argo, err := infra.Documents("components/argo")
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, install{"base+argo", append(base, argo...)})
	return out
}

func TestManifestsValidate(t *testing.T) {
	for _, in := range installs(t) {
		t.Run(in.name, func(t *testing.T) {
			for _, p := range check(in) {
				t.Error(p)
			}
		})
	}
}

// TestCheckCatches: the checks above can fail. Each case breaks one object of a valid
// install in a way the API server would refuse.
func TestCheckCatches(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kind    string
		objN    string
		breakIt func(o map[string]any)
		want    string
	}{
		{"negative timeout", "Service", "submit", func(o map[string]any) {
			o["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["timeoutSeconds"] = -5
		}, "timeoutSeconds"},
		{"two ports", "Service", "status", func(o map[string]any) {
			c := o["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
			c["ports"] = []any{map[string]any{"containerPort": 8080}, map[string]any{"containerPort": 9090}}
		}, "ports"},
		{"misspelt field", "Service", "compile", func(o map[string]any) {
			o["spec"].(map[string]any)["tempalte"] = map[string]any{}
		}, "unknown field"},
		{"unknown subscriber", "Trigger", "compile-run-submitted", func(o map[string]any) {
			o["spec"].(map[string]any)["subscriber"].(map[string]any)["ref"].(map[string]any)["name"] = "compiler"
		}, `"compiler" is not part of the install`},
		{"bad cron", "PingSource", "pipefn-tick", func(o map[string]any) {
			o["spec"].(map[string]any)["schedule"] = "every minute"
		}, "5 cron fields"},
		{"binding to a missing role", "RoleBinding", "pipefn-functions", func(o map[string]any) {
			o["roleRef"].(map[string]any)["name"] = "nope"
		}, "roleRef"},
		{"upper-case name", "ConfigMap", "pipefn-config", func(o map[string]any) {
			o["metadata"].(map[string]any)["name"] = "Pipefn"
		}, "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := infra.Objects(infra.Options{Team: "ml"})
			if err != nil {
				t.Fatal(err)
			}
			hit := false
			for _, o := range objs {
				if o["kind"] == tc.kind && name(o) == tc.objN {
					tc.breakIt(o)
					hit = true
				}
			}
			if !hit {
				t.Fatalf("no %s/%s", tc.kind, tc.objN)
			}
			problems := check(install{"broken", objs})
			if len(problems) == 0 || !strings.Contains(strings.Join(problems, "\n"), tc.want) {
				t.Errorf("problems %q do not mention %q", problems, tc.want)
			}
		})
	}
}

// TestEveryFileIsUsed: each YAML file under infra/ is reachable from some kustomization,
// so none escapes validation.
func TestEveryFileIsUsed(t *testing.T) {
	used := map[string]bool{}
	var walk func(dir string)
	walk = func(dir string) {
		raw, err := fs.ReadFile(infra.Files, path.Join(dir, "kustomization.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		used[path.Join(dir, "kustomization.yaml")] = true
		var k struct{ Resources, Components []string }
		if err := json.Unmarshal(mustJSON(t, raw), &k); err != nil {
			t.Fatal(err)
		}
		for _, r := range append(k.Resources, k.Components...) {
			p := path.Clean(path.Join(dir, r))
			if st, err := fs.Stat(infra.Files, p); err == nil && st.IsDir() {
				walk(p)
				continue
			}
			used[p] = true
		}
	}
	for _, root := range []string{"overlays/example-team", "cluster/tekton", "components/argo"} {
		walk(root)
	}
	err := fs.WalkDir(infra.Files, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") && !used[p] {
			t.Errorf("%s is in no kustomization", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t *testing.T, y []byte) []byte {
	docs, err := infra.SplitYAML(y)
	if err != nil || len(docs) != 1 {
		t.Fatalf("kustomization: %v", err)
	}
	b, _ := json.Marshal(docs[0])
	return b
}

// TestTektonFlags: the cluster config sets exactly the flags the Tekton compiler needs.
func TestTektonFlags(t *testing.T) {
	objs, err := infra.Documents("cluster/tekton")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	for _, o := range objs {
		if o["kind"] == "ConfigMap" && name(o) == "feature-flags" {
			var c corev1.ConfigMap
			if err := strict(o, &c); err != nil {
				t.Fatal(err)
			}
			got = c.Data
		}
	}
	if diff := cmp.Diff(tekton.RequiredFeatureFlags, got); diff != "" {
		t.Errorf("feature-flags (-compiler needs +manifest sets):\n%s", diff)
	}
}

// TestEventRoutes: every pipefn event type that a function consumes has a Trigger, and
// each Trigger's exact type is one pipefn knows.
func TestEventRoutes(t *testing.T) {
	objs, err := infra.Objects(infra.Options{Team: "ml"})
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string][]string{}
	for _, o := range objs {
		if o["kind"] != "Trigger" {
			continue
		}
		var tr trigger
		if err := strict(o, &tr); err != nil {
			t.Fatal(err)
		}
		if tr.Spec.Filter == nil || tr.Spec.Subscriber.Ref == nil {
			continue
		}
		typ := tr.Spec.Filter.Attributes["type"]
		routes[typ] = append(routes[typ], tr.Spec.Subscriber.Ref.Name)
	}
	for _, v := range routes {
		slices.Sort(v)
	}
	want := map[string][]string{
		events.TypeRunSubmitted:  {"compile"},
		events.TypeRunCancel:     {"compile"},
		events.TypeRunDispatched: {"status"},
		events.TypeRunStatus:     {"status"},
		events.TypeTaskFinished:  {"lineage"},
		events.TypePing:          {"schedule", "status"},
	}
	if diff := cmp.Diff(want, routes); diff != "" {
		t.Errorf("routes (-want +got):\n%s\n(types routed: %v)", diff, slices.Sorted(maps.Keys(routes)))
	}
}
