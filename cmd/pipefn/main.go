// Command pipefn is pipefn's CLI: `pipefn up` runs every function in one process on this
// machine; the other verbs compile pipelines and talk to a pipefn server.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	_ "time/tzdata" // schedules name IANA zones; the binary must not depend on the host's tzdata

	"github.com/pipefn/pipefn/shared/client"
)

// exitError carries an exit code through cobra without printing usage.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.err != nil && ee.err.Error() != "" {
				fmt.Fprintln(os.Stderr, "pipefn:", ee.err)
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "pipefn:", err)
		os.Exit(1)
	}
}

// globals are the flags every client verb shares.
type globals struct {
	server string
	token  string
	json   bool
}

func (g *globals) client() *client.Client {
	return client.New(g.server, g.token)
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "pipefn",
		Short:         "Run Kubeflow Pipelines (KFP v2 IR) on Tekton, Argo Workflows or this machine",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	defServer := os.Getenv("PIPEFN_SERVER")
	if defServer == "" {
		defServer = "http://127.0.0.1:8080"
	}
	root.PersistentFlags().StringVar(&g.server, "server", defServer, "pipefn server URL (env PIPEFN_SERVER)")
	root.PersistentFlags().StringVar(&g.token, "token", os.Getenv("PIPEFN_TOKEN"), "API token (env PIPEFN_TOKEN)")
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print answers as JSON")
	root.AddCommand(
		newUpCmd(),
		newCompileCmd(),
		newPipelineCmd(g),
		newRunCmd(g),
		newExperimentCmd(g),
	)
	for _, extra := range extraCommands {
		root.AddCommand(extra(g))
	}
	return root
}

// extraCommands lets verbs from other files (schedule, lineage, team, deploy) register
// without editing the root.
var extraCommands []func(*globals) *cobra.Command
