// Package conformance runs pipefn's packages against the real KFP IR
// corpus kept beside the repository (../shared/kfp-ir-corpus).
package conformance

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/pipefn/pipefn/shared/ir"
)

// corpusDir finds <repo>/../shared/kfp-ir-corpus. The repository is cloned
// in different places (developer tree, CI), always with shared/ beside it.
func corpusDir(tb testing.TB) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("cannot locate this test file")
	}
	repo := filepath.Join(filepath.Dir(file), "..", "..")
	dir := filepath.Join(repo, "..", "shared", "kfp-ir-corpus")
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		tb.Fatalf("KFP IR corpus not found at %s (it must sit beside the repository as shared/kfp-ir-corpus): %v", dir, err)
	}
	return dir
}

type corpusFile struct {
	name string
	data []byte
}

func corpusFiles(tb testing.TB) []corpusFile {
	dir := corpusDir(tb)
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var out []corpusFile
	for _, e := range entries {
		if e.IsDir() || e.Name() == "SOURCE.md" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, corpusFile{e.Name(), data})
	}
	if len(out) < 280 {
		tb.Fatalf("corpus at %s has %d files, want 287: incomplete copy?", dir, len(out))
	}
	return out
}

// platformOnly are the corpus files that hold only a PlatformSpec.
var irPlatformOnly = map[string]bool{
	"kfp-tekton__backend__src__v2__compiler__testdata__create_mount_delete_dynamic_pvc_platform.json": true,
	"kfp-tekton__backend__src__v2__compiler__testdata__create_pod_metadata.json":                      true,
}

// invalid are KFP's own negative tests and the message each must produce.
var irInvalid = map[string]string{
	"kfp__test_data__sdk_compiled_pipelines__invalid__empty_file.yaml":   "empty document",
	"kfp__test_data__sdk_compiled_pipelines__invalid__invalid_yaml.yaml": `components_1: unknown field "components_1"`,
	"kfp__test_data__sdk_compiled_pipelines__invalid__no_name.yaml":      "pipelineInfo.name: pipelineInfo.name is empty",
}

func TestCorpus(t *testing.T) {
	files := corpusFiles(t)
	var valid, plat, bad int
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			switch {
			case irPlatformOnly[f.name]:
				plat++
				k, err := ir.ParsePlatform(f.data)
				if err != nil {
					t.Fatalf("ParsePlatform: %v", err)
				}
				if len(k.Executors) == 0 {
					t.Fatal("ParsePlatform: no executors")
				}
				_, err = ir.Load(f.data)
				if err == nil || !strings.Contains(err.Error(), "no pipelineSpec: this is a platform spec document") {
					t.Fatalf("Load of a platform-only file: got %v, want the platform-spec error", err)
				}
			case irInvalid[f.name] != "":
				bad++
				_, err := ir.Load(f.data)
				if err == nil {
					t.Fatal("Load succeeded on an invalid file")
				}
				if !strings.Contains(err.Error(), irInvalid[f.name]) {
					t.Fatalf("Load error %q does not contain %q", err, irInvalid[f.name])
				}
				var ve *ir.ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("Load error %T is not a *ir.ValidationError", err)
				}
			default:
				valid++
				p, err := ir.Load(f.data)
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if p.Spec.GetPipelineInfo().GetName() == "" || p.Deployment == nil {
					t.Fatal("loaded pipeline lacks pipelineInfo.name or deployment")
				}
				if strings.Contains(string(f.data), "platforms:") != (p.Kubernetes != nil) {
					t.Fatalf("platform document present=%v, decoded=%v", strings.Contains(string(f.data), "platforms:"), p.Kubernetes != nil)
				}
			}
		})
	}
	if plat != len(irPlatformOnly) || bad != len(irInvalid) {
		t.Errorf("found %d platform-only and %d invalid files, want %d and %d", plat, bad, len(irPlatformOnly), len(irInvalid))
	}
	t.Logf("corpus: %d valid, %d platform-only, %d invalid", valid, plat, bad)
}

// FuzzLoad checks that no input, however broken, panics Parse, Validate,
// BindParameters or the condition checks. The whole corpus seeds it.
func FuzzLoad(f *testing.F) {
	for _, c := range corpusFiles(f) {
		f.Add(c.data)
	}
	f.Add([]byte("{}\n{}"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte(`{"pipelineSpec": {"root": {"dag": {"tasks": {"a": {"dependentTasks": ["a"]}}}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ir.Parse(data)
		if err != nil {
			return
		}
		_ = p.Validate()
		_, _ = p.BindParameters(map[string]any{"x": "1"})
	})
}

// BenchmarkLoad measures Load on each corpus file and on the whole corpus.
// Run one file with e.g. -bench 'Load/kfp__test_data__sdk_compiled_pipelines__valid__hello_world'.
func BenchmarkLoad(b *testing.B) {
	files := corpusFiles(b)
	var loadable []corpusFile
	for _, f := range files {
		if _, err := ir.Load(f.data); err == nil {
			loadable = append(loadable, f)
		}
	}
	b.Run("corpus", func(b *testing.B) {
		var size int64
		for _, f := range loadable {
			size += int64(len(f.data))
		}
		b.SetBytes(size)
		for b.Loop() {
			for _, f := range loadable {
				if _, err := ir.Load(f.data); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	for _, f := range loadable {
		b.Run(strings.TrimSuffix(f.name, filepath.Ext(f.name)), func(b *testing.B) {
			b.SetBytes(int64(len(f.data)))
			for b.Loop() {
				if _, err := ir.Load(f.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
