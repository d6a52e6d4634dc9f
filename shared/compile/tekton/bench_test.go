package tekton

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/types/known/structpb"

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

// boundParams binds every required root input without a value to a value
// of its type, as a caller starting the run would.
func boundParams(p *ir.Pipeline) map[string]*structpb.Value {
	out := map[string]*structpb.Value{}
	defs := p.Spec.GetRoot().GetInputDefinitions()
	for name, spec := range defs.GetParameters() {
		if spec.GetDefaultValue() != nil || spec.GetIsOptional() {
			continue
		}
		switch spec.GetParameterType() {
		case pipelinespec.ParameterType_NUMBER_INTEGER, pipelinespec.ParameterType_NUMBER_DOUBLE:
			out[name] = structpb.NewNumberValue(1)
		case pipelinespec.ParameterType_BOOLEAN:
			out[name] = structpb.NewBoolValue(true)
		case pipelinespec.ParameterType_LIST:
			out[name] = structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{structpb.NewStringValue("a")}})
		case pipelinespec.ParameterType_STRUCT:
			out[name] = structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{}})
		default:
			out[name] = structpb.NewStringValue("v")
		}
	}
	for name, spec := range defs.GetArtifacts() {
		if !spec.GetIsOptional() {
			out[name] = structpb.NewStringValue("s3://bucket/in/" + name)
		}
	}
	return out
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
		opts.Params = boundParams(p)
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
			opts.Params = boundParams(p)
			if _, err := Compile(p, opts); err != nil {
				b.Fatal(err)
			}
		}
	}
}
