package ir

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad checks that no input panics Parse, Validate, BindParameters or
// the placeholder and condition checks. It is seeded with testdata and,
// when present beside the repository, the KFP IR corpus (the conformance
// test is the one that insists on the corpus; this package stays
// self-contained). tests/conformance has the same fuzz target; this copy
// exists because fuzzing there builds every compiler too.
func FuzzLoad(f *testing.F) {
	base, err := os.ReadFile("testdata/base.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(base)
	if files, _ := filepath.Glob("../../../shared/kfp-ir-corpus/*"); len(files) > 0 {
		for _, name := range files {
			if filepath.Base(name) == "SOURCE.md" {
				continue
			}
			data, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte(`{"pipelineSpec": {"root": {"dag": {"tasks": {"a": {"dependentTasks": ["a"]}}}}}, "runtimeConfig": {"parameters": {"x": {"intValue": "1e999"}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		_ = p.Validate()
		_, _ = p.BindParameters(map[string]any{"steps": "1", "x": []any{1}})
	})
}
