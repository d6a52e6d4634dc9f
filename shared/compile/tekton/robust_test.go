package tekton

import (
	"os"
	"testing"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/proto"

	"github.com/pipefn/pipefn/shared/ir"
)

// TestNoPanicOnBrokenIR compiles unvalidated pipelines with pieces missing
// (each component, each executor, each task's inputs in turn): Compile must
// answer with an error or an object, never panic.
func TestNoPanicOnBrokenIR(t *testing.T) {
	for _, g := range goldenFiles {
		data, err := os.ReadFile(corpusPath(t, g.file))
		if err != nil {
			t.Fatal(err)
		}
		p, err := ir.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		opts := goldenOptions()
		opts.Params = paramsOf(t, g.params)
		try := func(what string, mutate func(*pipelinespec.PipelineSpec)) {
			spec := proto.Clone(p.Spec).(*pipelinespec.PipelineSpec)
			mutate(spec)
			q := *p
			q.Spec = spec
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: %s: panic: %v", g.golden, what, r)
				}
			}()
			_, _ = Compile(&q, opts)
		}
		for name := range p.Spec.GetComponents() {
			try("without component "+name, func(s *pipelinespec.PipelineSpec) { delete(s.Components, name) })
		}
		for name := range p.Spec.GetDeploymentSpec().GetFields()["executors"].GetStructValue().GetFields() {
			try("without executor "+name, func(s *pipelinespec.PipelineSpec) {
				delete(s.GetDeploymentSpec().GetFields()["executors"].GetStructValue().GetFields(), name)
			})
		}
		for name := range p.Spec.GetRoot().GetDag().GetTasks() {
			try("without inputs of "+name, func(s *pipelinespec.PipelineSpec) { s.GetRoot().GetDag().GetTasks()[name].Inputs = nil })
			try("without task "+name, func(s *pipelinespec.PipelineSpec) { delete(s.GetRoot().GetDag().GetTasks(), name) })
		}
		for cname, comp := range p.Spec.GetComponents() {
			for tname := range comp.GetDag().GetTasks() {
				try("without inputs of "+cname+"/"+tname, func(s *pipelinespec.PipelineSpec) {
					s.GetComponents()[cname].GetDag().GetTasks()[tname].Inputs = nil
				})
				try("without iterator items of "+cname+"/"+tname, func(s *pipelinespec.PipelineSpec) {
					if it := s.GetComponents()[cname].GetDag().GetTasks()[tname].GetParameterIterator(); it != nil {
						it.Items = nil
					}
				})
			}
			try("without outputs of "+cname, func(s *pipelinespec.PipelineSpec) {
				if d := s.GetComponents()[cname].GetDag(); d != nil {
					d.Outputs = nil
				}
			})
		}
		try("without root inputs", func(s *pipelinespec.PipelineSpec) { s.Root.InputDefinitions = nil })
		try("without deployment spec", func(s *pipelinespec.PipelineSpec) { s.DeploymentSpec = nil })
		try("without root", func(s *pipelinespec.PipelineSpec) { s.Root = nil })
	}
}
