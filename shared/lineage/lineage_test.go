package lineage

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	"github.com/pipefn/pipefn/shared/api"
)

func TestIDsAreDeterministicAndDistinct(t *testing.T) {
	if ExecutionID("r1", "train") != ExecutionID("r1", "train") {
		t.Fatal("ExecutionID is not deterministic")
	}
	ids := map[string]string{
		"exe r1/train":   ExecutionID("r1", "train"),
		"exe r1t/rain":   ExecutionID("r1t", "rain"),
		"exe r2/train":   ExecutionID("r2", "train"),
		"art s3://a/b":   ArtifactID("s3://a/b"),
		"art s3://a/b/":  ArtifactID("s3://a/b/"),
		"art file:///ab": ArtifactID("file:///ab"),
	}
	seen := map[string]string{}
	for name, id := range ids {
		if prev, ok := seen[id]; ok {
			t.Errorf("%s and %s share id %s", prev, name, id)
		}
		seen[id] = name
		if strings.HasPrefix(name, "exe") != IsExecutionID(id) || strings.HasPrefix(name, "art") != IsArtifactID(id) {
			t.Errorf("%s: id %s has the wrong kind prefix", name, id)
		}
	}
}

// loadComponent reads one component of a real compiled pipeline from the IR corpus.
func loadComponent(t *testing.T, file, name string) *pipelinespec.ComponentSpec {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "..", "..", "shared", "kfp-ir-corpus", file))
	if err != nil {
		t.Fatalf("KFP IR corpus file missing (it must sit beside the repository as shared/kfp-ir-corpus): %v", err)
	}
	doc := strings.SplitN(string(data), "\n---", 2)[0]
	js, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var spec pipelinespec.PipelineSpec
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(js, &spec); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	c, ok := spec.GetComponents()[name]
	if !ok {
		t.Fatalf("%s: no component %s", file, name)
	}
	return c
}

func TestCacheKey(t *testing.T) {
	comp := loadComponent(t, "kfp__test_data__sdk_compiled_pipelines__valid__metrics_visualization_v2.yaml", "comp-wine-classification")
	other := loadComponent(t, "kfp__test_data__sdk_compiled_pipelines__valid__metrics_visualization_v2.yaml", "comp-digit-classification")
	base := func() CacheKeyInput {
		return CacheKeyInput{
			Component: comp,
			Image:     "python:3.9",
			Command:   []string{"sh", "-c", "python3 -m kfp.dsl.executor_main"},
			Args:      []string{"--executor_input", "{{$}}", "--function_to_execute", "wine_classification"},
			Parameters: map[string]*structpb.Value{
				"lr":     structpb.NewNumberValue(0.1),
				"epochs": structpb.NewNumberValue(3),
				"tags":   structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{structpb.NewStringValue("a")}}),
			},
			Artifacts: map[string][]ArtifactRef{
				"data": {{URI: "s3://root/r1/prep/data", Digest: "sha256:" + strings.Repeat("0", 64)}},
			},
		}
	}
	baseKey, err := CacheKey(base())
	if err != nil {
		t.Fatal(err)
	}
	if !validKey(baseKey) {
		t.Fatalf("key %q is not 64 hex characters", baseKey)
	}
	// Every covered field changes the key.
	changes := map[string]func(*CacheKeyInput){
		"component definitions": func(in *CacheKeyInput) { in.Component = other },
		"image":                 func(in *CacheKeyInput) { in.Image = "python:3.10" },
		"command":               func(in *CacheKeyInput) { in.Command = in.Command[:2] },
		"args":                  func(in *CacheKeyInput) { in.Args = append(in.Args, "--x") },
		"args moved to command": func(in *CacheKeyInput) { in.Command = append(in.Command, in.Args[0]); in.Args = in.Args[1:] },
		"parameter value":       func(in *CacheKeyInput) { in.Parameters["lr"] = structpb.NewNumberValue(0.2) },
		"parameter type":        func(in *CacheKeyInput) { in.Parameters["epochs"] = structpb.NewStringValue("3") },
		"parameter added":       func(in *CacheKeyInput) { in.Parameters["seed"] = structpb.NewNullValue() },
		"artifact digest": func(in *CacheKeyInput) {
			in.Artifacts["data"][0].Digest = "sha256:" + strings.Repeat("1", 64)
		},
		"artifact uri":     func(in *CacheKeyInput) { in.Artifacts["data"][0].URI = "s3://root/r2/prep/data" },
		"artifact renamed": func(in *CacheKeyInput) { in.Artifacts["train"] = in.Artifacts["data"]; delete(in.Artifacts, "data") },
		"no component":     func(in *CacheKeyInput) { in.Component = nil },
		"output definition": func(in *CacheKeyInput) {
			in.Component = &pipelinespec.ComponentSpec{InputDefinitions: comp.InputDefinitions}
		},
	}
	for name, change := range changes {
		t.Run("changes with "+name, func(t *testing.T) {
			in := base()
			change(&in)
			k, err := CacheKey(in)
			if err != nil {
				t.Fatal(err)
			}
			if k == baseKey {
				t.Errorf("key did not change")
			}
		})
	}
	// What is not covered does not change it.
	same := map[string]func(*CacheKeyInput){
		"executor label": func(in *CacheKeyInput) {
			in.Component = &pipelinespec.ComponentSpec{InputDefinitions: comp.InputDefinitions, OutputDefinitions: comp.OutputDefinitions,
				Implementation: &pipelinespec.ComponentSpec_ExecutorLabel{ExecutorLabel: "exec-renamed"}}
		},
		"parameter map order": func(in *CacheKeyInput) {
			p := map[string]*structpb.Value{}
			for _, k := range []string{"tags", "epochs", "lr"} {
				p[k] = in.Parameters[k]
			}
			in.Parameters = p
		},
	}
	for name, change := range same {
		t.Run("stable under "+name, func(t *testing.T) {
			in := base()
			change(&in)
			k, err := CacheKey(in)
			if err != nil {
				t.Fatal(err)
			}
			if k != baseKey {
				t.Errorf("key changed")
			}
		})
	}
	// nil and empty slices/maps are one and the same.
	a, _ := CacheKey(CacheKeyInput{Image: "x"})
	b, _ := CacheKey(CacheKeyInput{Image: "x", Command: []string{}, Args: []string{}, Parameters: map[string]*structpb.Value{}})
	if a != b {
		t.Error("nil and empty fields give different keys")
	}
	// The key is stable across processes and releases: a change of encoding must bump
	// cacheKeyVersion, and this golden value with it.
	const golden = "033bb94d903ad8de"
	got, _ := CacheKey(CacheKeyInput{Image: "busybox", Command: []string{"echo"}, Args: []string{"hi"},
		Parameters: map[string]*structpb.Value{"n": structpb.NewNumberValue(1)}})
	if !strings.HasPrefix(got, golden) {
		t.Errorf("CacheKey(golden input) = %s, want prefix %s (bump cacheKeyVersion if the encoding changed on purpose)", got, golden)
	}
}

func TestParseMetrics(t *testing.T) {
	// Metadata exactly as KFP's SDK writes it (kfp.dsl.Metrics.log_metric,
	// ClassificationMetrics.log_confusion_matrix / log_roc_curve), after a JSON round trip.
	const metricsJSON = `{"accuracy": 0.9666, "loss": 0.12, "epochs": 10, "display_name": "metrics"}`
	const classJSON = `{
	  "confusionMatrix": {
	    "annotationSpecs": [{"displayName": "Setosa"}, {"displayName": "Versicolour"}, {"displayName": "Virginica"}],
	    "rows": [{"row": [50, 0, 0]}, {"row": [0, 47, 3]}, {"row": [0, 2, 48]}]
	  },
	  "confidenceMetrics": [
	    {"confidenceThreshold": 2.0, "recall": 0.0, "falsePositiveRate": 0.0},
	    {"confidenceThreshold": 1.0, "recall": 0.33, "falsePositiveRate": 0.0},
	    {"confidenceThreshold": 0.9, "recall": 0.66, "falsePositiveRate": 0.1}
	  ]
	}`
	// Older KFP SDKs (kfp.v2 1.x) wrote rows as bare lists.
	const oldRowsJSON = `{"confusionMatrix": {"annotationSpecs": [{"displayName": "a"}, {"displayName": "b"}], "rows": [[1, 2], [3, 4]]}}`
	decode := func(s string) map[string]any {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	tests := []struct {
		name    string
		typ     string
		md      map[string]any
		want    Metrics
		wantErr string
	}{
		{"scalars", TypeMetrics, decode(metricsJSON),
			Metrics{Scalars: map[string]float64{"accuracy": 0.9666, "loss": 0.12, "epochs": 10}}, ""},
		{"classification", TypeClassificationMetrics, decode(classJSON), Metrics{
			ConfusionMatrix: &ConfusionMatrix{Labels: []string{"Setosa", "Versicolour", "Virginica"},
				Rows: [][]float64{{50, 0, 0}, {0, 47, 3}, {0, 2, 48}}},
			ROC: []ConfidencePoint{{2, 0, 0}, {1, 0.33, 0}, {0.9, 0.66, 0.1}},
		}, ""},
		{"old rows", TypeClassificationMetrics, decode(oldRowsJSON), Metrics{
			ConfusionMatrix: &ConfusionMatrix{Labels: []string{"a", "b"}, Rows: [][]float64{{1, 2}, {3, 4}}}}, ""},
		{"from structpb", TypeMetrics, mustStruct(t, map[string]any{"f1": 0.5}).AsMap(),
			Metrics{Scalars: map[string]float64{"f1": 0.5}}, ""},
		{"empty", TypeMetrics, nil, Metrics{}, ""},
		{"not a metrics type", TypeModel, decode(metricsJSON), Metrics{}, ""},
		{"ragged matrix", TypeClassificationMetrics,
			decode(`{"confusionMatrix": {"annotationSpecs": [{"displayName": "a"}, {"displayName": "b"}], "rows": [{"row": [1, 2]}, {"row": [3]}]}}`),
			Metrics{}, "metadata.confusionMatrix.rows[1]: 1 cells for 2 labels"},
		{"rows vs labels", TypeClassificationMetrics,
			decode(`{"confusionMatrix": {"annotationSpecs": [{"displayName": "a"}], "rows": []}}`),
			Metrics{}, "metadata.confusionMatrix.rows: 0 rows for 1 labels"},
		{"string cell", TypeClassificationMetrics,
			decode(`{"confusionMatrix": {"annotationSpecs": [{"displayName": "a"}], "rows": [{"row": ["1"]}]}}`),
			Metrics{}, "metadata.confusionMatrix.rows[0][0]: is a string, want a number"},
		{"roc point missing recall", TypeClassificationMetrics,
			decode(`{"confidenceMetrics": [{"confidenceThreshold": 1, "falsePositiveRate": 0}]}`),
			Metrics{}, "metadata.confidenceMetrics[0].recall: is missing or null, want a number"},
		{"roc not a list", TypeClassificationMetrics, decode(`{"confidenceMetrics": {}}`),
			Metrics{}, "metadata.confidenceMetrics: is an object, want a list"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseMetrics(tc.typ, tc.md)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseMetrics (-want +got):\n%s", diff)
			}
		})
	}
}

func mustStruct(t *testing.T, m map[string]any) *structpb.Struct {
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFromRuntimeArtifact(t *testing.T) {
	ra := &pipelinespec.RuntimeArtifact{
		Name: "model",
		Type: &pipelinespec.ArtifactTypeSchema{Kind: &pipelinespec.ArtifactTypeSchema_SchemaTitle{SchemaTitle: TypeModel}},
		Uri:  "s3://root/r1/train/model",
		Metadata: mustStruct(t, map[string]any{
			"pipefn.size": 1234, "pipefn.digest": "sha256:" + strings.Repeat("a", 64), "framework": "sklearn",
		}),
	}
	want := Artifact{Name: "model", Type: TypeModel, URI: "s3://root/r1/train/model", Size: 1234,
		Digest: "sha256:" + strings.Repeat("a", 64), Metadata: map[string]any{"framework": "sklearn"}}
	got := FromRuntimeArtifacts(map[string][]*pipelinespec.RuntimeArtifact{"model": {ra, nil}})
	if diff := cmp.Diff(map[string][]Artifact{"model": {want}}, got); diff != "" {
		t.Errorf("FromRuntimeArtifacts (-want +got):\n%s", diff)
	}
}

func TestDecodeTaskFinished(t *testing.T) {
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	exe := ExecutionID("r1", "train")
	tests := []struct {
		name    string
		data    string
		want    TaskFinished
		wantErr string
	}{{
		name: "lineage member",
		data: `{"run_id":"r1","team":"ml","attempt":0,"task":{"run_id":"r1","task_id":"train","display_name":"train","state":"SUCCEEDED"},
		        "lineage":{"pipeline":"p","execution":{"run_id":"r1","task_id":"train","task_name":"train","state":"SUCCEEDED","end":"2026-03-01T12:00:00Z"},
		                   "inputs":{"data":[{"uri":"s3://r/d"}]},
		                   "outputs":{"model":[{"uri":"s3://r/m","type":"system.Model","size":3,"digest":"sha256:` + strings.Repeat("b", 64) + `"}]}}}`,
		want: TaskFinished{
			Pipeline:  "p",
			Execution: Execution{ID: exe, RunID: "r1", TaskID: "train", TaskName: "train", State: "SUCCEEDED", End: end},
			Inputs:    map[string][]Artifact{"data": {{ID: ArtifactID("s3://r/d"), Name: "data", Type: TypeArtifact, URI: "s3://r/d"}}},
			Outputs: map[string][]Artifact{"model": {{ID: ArtifactID("s3://r/m"), Name: "model", Type: TypeModel, URI: "s3://r/m",
				Size: 3, Digest: "sha256:" + strings.Repeat("b", 64), ProducerExecutionID: exe, CreatedAt: end}}},
		},
	}, {
		name: "task detail only",
		data: `{"run_id":"r1","team":"ml","cache_key":"` + strings.Repeat("c", 64) + `","task":{"run_id":"r1","task_id":"train","display_name":"train","state":"CACHED",
		        "end_time":"2026-03-01T12:00:00Z","cached_from":"r0","input_parameters":{"lr":0.1},
		        "inputs":{"data":{"uris":["s3://r/d"]}},"outputs":{"model":{"uris":["s3://r0/m"]}}}}`,
		want: TaskFinished{
			Execution: Execution{ID: exe, RunID: "r1", TaskID: "train", TaskName: "train", State: "CACHED", End: end,
				Parameters: map[string]any{"lr": 0.1}, CacheKey: strings.Repeat("c", 64), CachedFrom: ExecutionID("r0", "train")},
			Inputs: map[string][]Artifact{"data": {{ID: ArtifactID("s3://r/d"), Name: "data", Type: TypeArtifact, URI: "s3://r/d"}}},
			Outputs: map[string][]Artifact{"model": {{ID: ArtifactID("s3://r0/m"), Name: "model", Type: TypeArtifact, URI: "s3://r0/m",
				ProducerExecutionID: ExecutionID("r0", "train")}}},
		},
	}, {
		name:    "empty",
		data:    ` `,
		wantErr: "task.finished: no data",
	}, {
		name:    "not json",
		data:    `{"run_id":`,
		wantErr: "task.finished: decode data: unexpected end of JSON input",
	}, {
		name:    "nothing to record",
		data:    `{"run_id":"r1"}`,
		wantErr: "task.finished: data has none of lineage, execution, task",
	}, {
		name:    "run mismatch",
		data:    `{"run_id":"r1","execution":{"run_id":"r2","task_id":"t","state":"FAILED"}}`,
		wantErr: `task.finished: run_id "r1" differs from execution.run_id "r2"`,
	}, {
		name: "every problem at once",
		data: `{"execution":{"run_id":"r1","task_id":"t","state":"RUNNING","cache_key":"xyz"},
		        "outputs":{"m":[{"uri":"","size":-1},{"uri":"s3://x","size":-1,"digest":"md5:1"}]}}`,
		wantErr: `task.finished: execution.cache_key: "xyz" is not a hex sha256; ` +
			`execution.state: "RUNNING" is not a terminal task state (want SUCCEEDED, FAILED, SKIPPED, CACHED or CANCELED); ` +
			`outputs[m][0].uri: is empty; ` +
			`outputs[m][1].digest: "md5:1" is not sha256:<64 hex>; ` +
			`outputs[m][1].size: is negative (-1)`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeTaskFinished([]byte(tc.data))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v\nwant %s", err, tc.wantErr)
				}
				if api.KindOf(err) != api.KindInvalid {
					t.Errorf("err kind = %d, want invalid", api.KindOf(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("DecodeTaskFinished (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzDecodeTaskFinished: the decoder never panics, errors are always invalid-argument
// errors, and what it accepts is normalized (ids match, re-normalizing is a no-op).
func FuzzDecodeTaskFinished(f *testing.F) {
	f.Add([]byte(`{"run_id":"r1","task":{"task_id":"t","state":"SUCCEEDED","outputs":{"m":{"uris":["s3://a"]}}}}`))
	f.Add([]byte(`{"execution":{"run_id":"r","task_id":"t","state":"CACHED","cached_from":"exe-1"},"outputs":{"o":[{"uri":"file:///x","metadata":{"a":[1,{"b":null}]}}]}}`))
	f.Add([]byte(`{"lineage":{"execution":{"run_id":"r","task_id":"t","state":"FAILED"},"inputs":{"":[{"uri":"x"}]}}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tf, err := DecodeTaskFinished(data)
		if err != nil {
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Kind != api.KindInvalid {
				t.Fatalf("error %v is not an invalid-argument error", err)
			}
			return
		}
		if tf.Execution.ID != ExecutionID(tf.Execution.RunID, tf.Execution.TaskID) {
			t.Fatalf("execution id %s does not match run %q task %q", tf.Execution.ID, tf.Execution.RunID, tf.Execution.TaskID)
		}
		for _, ev := range tf.Events() {
			if ev.ExecutionID != tf.Execution.ID || !IsArtifactID(ev.ArtifactID) {
				t.Fatalf("bad event %+v", ev)
			}
		}
		again := tf
		if err := again.Normalize(); err != nil {
			t.Fatalf("re-normalizing an accepted payload failed: %v", err)
		}
		if _, err := json.Marshal(tf); err != nil {
			t.Fatalf("accepted payload does not encode: %v", err)
		}
	})
}

func TestCloneKeepsTheOriginal(t *testing.T) {
	tf := TaskFinished{
		Execution: Execution{RunID: "r", TaskID: "t", State: "SUCCEEDED"},
		Outputs:   map[string][]Artifact{"m": {{URI: "s3://x"}}},
	}
	c := tf.Clone()
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Artifact{URI: "s3://x"}, tf.Outputs["m"][0]); diff != "" {
		t.Errorf("Normalize of a clone changed the original (-want +got):\n%s", diff)
	}
	if c.Outputs["m"][0].ID != ArtifactID("s3://x") {
		t.Errorf("clone was not normalized: %+v", c.Outputs["m"][0])
	}
}
