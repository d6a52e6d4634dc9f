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
var platformOnly = map[string]bool{
	"kfp-tekton__backend__src__v2__compiler__testdata__create_mount_delete_dynamic_pvc_platform.json": true,
	"kfp-tekton__backend__src__v2__compiler__testdata__create_pod_metadata.json":                      true,
}

// invalid are KFP's own negative tests and the message each must produce.
var invalid = map[string]string{
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
			case platformOnly[f.name]:
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
			case invalid[f.name] != "":
				bad++
				_, err := ir.Load(f.data)
				if err == nil {
					t.Fatal("Load succeeded on an invalid file")
				}
				if !strings.Contains(err.Error(), invalid[f.name]) {
					t.Fatalf("Load error %q does not contain %q", err, invalid[f.name])
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
	if plat != len(platformOnly) || bad != len(invalid) {
		t.Errorf("found %d platform-only and %d invalid files, want %d and %d", plat, bad, len(platformOnly), len(invalid))
	}
	t.Logf("corpus: %d valid, %d platform-only, %d invalid", valid, plat, bad)
}
