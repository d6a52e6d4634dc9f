package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/pipefn/pipefn/infra"
)

func init() {
	extraCommands = append(extraCommands, newDeployCmd)
}

// newDeployCmd renders a team's install (infra/ base, the backend's component, the team's
// namespace and settings) as YAML for `kubectl apply -f -`.
func newDeployCmd(*globals) *cobra.Command {
	var opts infra.Options
	var out string
	cmd := &cobra.Command{
		Use:   "deploy --team TEAM [--backend tekton|argo]",
		Short: "Render a team's Knative install as YAML (pipe into kubectl apply -f -)",
		Long: "Render a team's install: its namespace, one Knative Service per function, the Broker, " +
			"Triggers, PingSource and RBAC, with the backend's pieces (Tekton: a route for Tekton's CloudEvents; " +
			"Argo: an ApiServerSource on Workflows). Cluster-wide Tekton settings are in infra/cluster/tekton.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := infra.Render(opts)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			return os.WriteFile(out, b, 0o644)
		},
	}
	cmd.Flags().StringVar(&opts.Team, "team", "", "team (its namespace)")
	cmd.Flags().StringVar(&opts.Backend, "backend", "tekton", "tekton or argo")
	cmd.Flags().StringVar(&opts.Registry, "registry", infra.DefaultRegistry, "image registry of the functions and the launcher")
	cmd.Flags().StringVar(&opts.Tag, "tag", infra.DefaultTag, "image tag")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of stdout")
	_ = cmd.MarkFlagRequired("team")
	return cmd
}
