package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/pipefn/pipefn/shared/compile"
	"github.com/pipefn/pipefn/shared/compile/argo"
	"github.com/pipefn/pipefn/shared/compile/tekton"
	"github.com/pipefn/pipefn/shared/ir"
)

func newCompileCmd() *cobra.Command {
	var (
		target, out, runID, namespace, root, launcherImage string
		params                                             []string
	)
	cmd := &cobra.Command{
		Use:   "compile FILE",
		Short: "Compile KFP IR to a Tekton PipelineRun or an Argo Workflow (YAML)",
		Long: `Compile KFP v2 IR (YAML or JSON, as the KFP SDK writes it) to a Tekton PipelineRun or an
Argo Workflow. Prints YAML to stdout, or to -o FILE. On invalid input it prints every
problem with its path and exits 1.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readInput(args[0])
			if err != nil {
				return &exitError{1, err}
			}
			obj, err := compileIR(data, target, params, compile.Options{
				RunID: runID, Namespace: namespace, PipelineRoot: root, LauncherImage: launcherImage, Team: namespace,
			})
			if err != nil {
				return &exitError{1, fmt.Errorf("%s: %w", args[0], err)}
			}
			y, err := yaml.Marshal(obj)
			if err != nil {
				return &exitError{1, err}
			}
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(y)
				return err
			}
			return writeFileAtomic(out, y)
		},
	}
	cmd.Flags().StringVar(&target, "target", "tekton", "tekton|argo")
	cmd.Flags().StringVarP(&out, "out", "o", "", "write the object to this file (default stdout)")
	cmd.Flags().StringArrayVar(&params, "param", nil, "NAME=VALUE (repeatable)")
	cmd.Flags().StringVar(&runID, "run-id", "run", "run id the object is named after")
	cmd.Flags().StringVar(&namespace, "namespace", "default", "namespace of the object")
	cmd.Flags().StringVar(&root, "pipeline-root", "", "pipeline root (default: the IR's defaultPipelineRoot, else s3://pipefn/<namespace>)")
	cmd.Flags().StringVar(&launcherImage, "launcher-image", compile.DefaultLauncherImage, "image that carries the launcher")
	return cmd
}

// compileIR loads and validates data, binds params and compiles for target.
func compileIR(data []byte, target string, params []string, opts compile.Options) (any, error) {
	if target != "tekton" && target != "argo" {
		return nil, fmt.Errorf("--target %q: want tekton or argo", target)
	}
	p, err := ir.Load(data)
	if err != nil {
		return nil, err
	}
	overrides, err := parseParams(params)
	if err != nil {
		return nil, err
	}
	bound, err := p.BindParameters(overrides)
	if err != nil {
		return nil, err
	}
	opts.Params = bound
	if opts.PipelineRoot == "" {
		opts.PipelineRoot = p.Spec.GetDefaultPipelineRoot()
	}
	if opts.PipelineRoot == "" {
		opts.PipelineRoot = "s3://pipefn/" + opts.Namespace
	}
	if target == "argo" {
		return argo.Compile(p, opts)
	}
	return tekton.Compile(p, opts)
}

// parseParams turns NAME=VALUE flags into raw string overrides; BindParameters converts
// them to the declared types and names any that do not fit.
func parseParams(kvs []string) (map[string]any, error) {
	out := map[string]any{}
	var bad []string
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			bad = append(bad, fmt.Sprintf("--param %q: want NAME=VALUE", kv))
			continue
		}
		out[k] = v
	}
	if len(bad) > 0 {
		return nil, errors.New(strings.Join(bad, "; "))
	}
	return out, nil
}

func readInput(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(os.Stdin, 64<<20))
	}
	return os.ReadFile(name)
}

// writeFileAtomic writes through a temp file and a rename, so a failed write never
// leaves a half-written file behind.
func writeFileAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(dirOf(name), ".pipefn-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, name)
}

func dirOf(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i+1]
	}
	return "."
}
