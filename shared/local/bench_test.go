package local

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/pipefn/pipefn/shared/artifacts"
	"github.com/pipefn/pipefn/shared/ir"
)

// fanOutIR is a ParallelFor over n items whose body runs `true`: the cost
// measured is the executor's own (scheduling, input resolution, process
// start, reporting), not the user's work.
func fanOutIR(n int) []byte {
	items := make([]int, n)
	for i := range items {
		items[i] = i
	}
	raw, _ := json.Marshal(items)
	return fmt.Appendf(nil, `
components:
  comp-noop:
    executorLabel: exec-noop
    inputDefinitions:
      parameters:
        i:
          parameterType: NUMBER_INTEGER
  comp-for-loop-1:
    dag:
      tasks:
        noop:
          componentRef:
            name: comp-noop
          inputs:
            parameters:
              i:
                componentInputParameter: pipelinechannel--loop-item-param-1
          taskInfo:
            name: noop
    inputDefinitions:
      parameters:
        pipelinechannel--loop-item-param-1:
          parameterType: NUMBER_INTEGER
deploymentSpec:
  executors:
    exec-noop:
      container:
        command: ["true"]
        image: alpine
pipelineInfo:
  name: fan-out
root:
  dag:
    tasks:
      for-loop-1:
        componentRef:
          name: comp-for-loop-1
        parameterIterator:
          itemInput: pipelinechannel--loop-item-param-1
          items:
            raw: '%s'
        taskInfo:
          name: for-loop-1
schemaVersion: 2.1.0
sdkVersion: kfp-2.14.3
`, raw)
}

func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{1, 32} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			p, err := ir.Load(fanOutIR(n))
			if err != nil {
				b.Fatal(err)
			}
			dir := b.TempDir()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				state, err := Run(context.Background(), p, Options{
					RunID:        fmt.Sprintf("bench-%d", i),
					PipelineRoot: artifacts.FileURI(filepath.Join(dir, "root")),
					WorkDir:      filepath.Join(dir, "work"),
				})
				if state != StateSucceeded {
					b.Fatalf("Run = %s, %v", state, err)
				}
			}
		})
	}
}
