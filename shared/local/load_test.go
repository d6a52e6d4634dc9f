package local

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pipefn/pipefn/shared/ir"
)

func TestTestdataLoads(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if _, err := ir.Load(b); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
