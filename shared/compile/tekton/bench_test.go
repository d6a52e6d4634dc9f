package tekton

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pipefn/pipefn/shared/ir"
)

// BenchmarkCompile compiles each golden corpus file (already loaded).
func BenchmarkCompile(b *testing.B) {
	for _, g := range goldenFiles {
		p := loadCorpus(b, g.file)
		opts := goldenOptions()
		if _, err := Compile(p, opts); err != nil {
			continue // needs run parameters; covered by TestGolden
		}
		b.Run(g.golden, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Compile(p, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCorpus loads and compiles every corpus file that compiles: the
// cost of turning the whole corpus into PipelineRuns.
func BenchmarkCorpus(b *testing.B) {
	dir := filepath.Dir(corpusPath(b, "SOURCE.md"))
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	var files [][]byte
	opts := goldenOptions()
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		p, err := ir.Load(data)
		if err != nil {
			continue
		}
		if _, err := Compile(p, opts); err != nil {
			continue
		}
		files = append(files, data)
	}
	b.Logf("%d files", len(files))
	b.ReportAllocs()
	for b.Loop() {
		for _, data := range files {
			p, err := ir.Load(data)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := Compile(p, opts); err != nil {
				b.Fatal(err)
			}
		}
	}
}
