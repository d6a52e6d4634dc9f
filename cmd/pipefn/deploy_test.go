package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var updateGolden = flag.Bool("update", false, "rewrite golden files")

// TestDeployGolden: the rendered install of one team, per backend, reviewed in diffs.
func TestDeployGolden(t *testing.T) {
	for _, backend := range []string{"tekton", "argo"} {
		t.Run(backend, func(t *testing.T) {
			got, code := pipefn(t, "deploy", "--team", "ml-research", "--backend", backend, "--tag", "v0.1.0")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, got)
			}
			golden := filepath.Join("testdata", "deploy-ml-research-"+backend+".yaml")
			if *updateGolden {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("deploy output (-golden +got):\n%s", diff)
			}
		})
	}
}

func TestDeployRefuses(t *testing.T) {
	for _, args := range [][]string{
		{"deploy"},
		{"deploy", "--team", "Bad_Team"},
		{"deploy", "--team", "ok", "--backend", "airflow"},
	} {
		if out, code := pipefn(t, args...); code == 0 {
			t.Errorf("%v: exit 0: %s", args, out)
		}
	}
}
