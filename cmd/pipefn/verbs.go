package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/client"
	"github.com/pipefn/pipefn/shared/ir"
)

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func table(w io.Writer, header string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func newPipelineCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "pipeline", Short: "Upload and list pipelines"}
	var name, desc, pipelineID string
	upload := &cobra.Command{
		Use:   "upload FILE",
		Short: "Upload KFP IR as a new pipeline, or as a new version with --pipeline-id",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readInput(args[0])
			if err != nil {
				return err
			}
			if name == "" {
				name = strings.TrimSuffix(filepath.Base(args[0]), filepath.Ext(args[0]))
			}
			c := g.client()
			if pipelineID != "" {
				v, err := c.UploadVersion(cmd.Context(), pipelineID, name, data)
				if err != nil {
					return err
				}
				if g.json {
					return printJSON(cmd.OutOrStdout(), v)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "pipeline version %s (%s) of %s\n", v.PipelineVersionID, v.DisplayName, v.PipelineID)
				return nil
			}
			p, err := c.UploadPipeline(cmd.Context(), name, desc, data)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), p)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pipeline %s (%s)\n", p.PipelineID, p.DisplayName)
			return nil
		},
	}
	upload.Flags().StringVar(&name, "name", "", "pipeline (or version) name (default: the file's name)")
	upload.Flags().StringVar(&desc, "description", "", "description")
	upload.Flags().StringVar(&pipelineID, "pipeline-id", "", "upload as a new version of this pipeline")

	var pageSize int
	list := &cobra.Command{
		Use:   "list",
		Short: "List pipelines",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := g.client().ListPipelines(cmd.Context(), pageSize, "")
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), resp)
			}
			var rows [][]string
			for _, p := range resp.Pipelines {
				rows = append(rows, []string{p.PipelineID, p.DisplayName, ts(p.CreatedAt)})
			}
			return table(cmd.OutOrStdout(), "ID\tNAME\tCREATED", rows)
		},
	}
	list.Flags().IntVar(&pageSize, "page-size", 50, "how many to list")

	versions := &cobra.Command{
		Use:   "versions PIPELINE_ID",
		Short: "List a pipeline's versions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := g.client().ListVersions(cmd.Context(), args[0], pageSize, "")
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), resp)
			}
			var rows [][]string
			for _, v := range resp.PipelineVersions {
				rows = append(rows, []string{v.PipelineVersionID, v.DisplayName, ts(v.CreatedAt)})
			}
			return table(cmd.OutOrStdout(), "ID\tNAME\tCREATED", rows)
		},
	}
	versions.Flags().IntVar(&pageSize, "page-size", 50, "how many to list")
	cmd.AddCommand(upload, list, versions)
	return cmd
}

func newExperimentCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "experiment", Short: "Create and list experiments"}
	var desc string
	create := &cobra.Command{
		Use:  "create NAME",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.client().CreateExperiment(cmd.Context(), args[0], desc)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), e)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "experiment %s (%s)\n", e.ExperimentID, e.DisplayName)
			return nil
		},
	}
	create.Flags().StringVar(&desc, "description", "", "description")
	list := &cobra.Command{
		Use:  "list",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := g.client().ListExperiments(cmd.Context(), 100, "")
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), resp)
			}
			var rows [][]string
			for _, e := range resp.Experiments {
				rows = append(rows, []string{e.ExperimentID, e.DisplayName, e.StorageState, ts(e.CreatedAt)})
			}
			return table(cmd.OutOrStdout(), "ID\tNAME\tSTATE\tCREATED", rows)
		},
	}
	cmd.AddCommand(create, list)
	return cmd
}

func newRunCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "run", Short: "Submit, watch, terminate, retry and clone runs"}

	var (
		pipeline, version, experiment, name, backend, idem string
		params                                             []string
		wait, noCache                                      bool
	)
	submit := &cobra.Command{
		Use:   "submit [FILE]",
		Short: "Start a run of an IR file, or of an uploaded pipeline with --pipeline",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c := g.client()
			overrides, err := parseParams(params)
			if err != nil {
				return err
			}
			run := &api.Run{DisplayName: name, ExperimentID: experiment, Backend: backend,
				RuntimeConfig: &api.RuntimeConfig{Parameters: overrides}}
			if noCache {
				f := false
				run.EnableCaching = &f
			}
			src, err := pipelineSource(ctx, c, args, pipeline, version)
			if err != nil {
				return err
			}
			run.PipelineSpec, run.PipelineVersionReference = src.spec, src.ref
			if run.DisplayName == "" {
				run.DisplayName = src.name
			}
			r, err := c.CreateRun(ctx, run, idem)
			if err != nil {
				return err
			}
			return afterCreate(cmd, g, r, wait)
		},
	}
	submit.Flags().StringVar(&pipeline, "pipeline", "", "run an uploaded pipeline (name or id)")
	submit.Flags().StringVar(&version, "version", "", "pipeline version id (default: the newest)")
	submit.Flags().StringVar(&experiment, "experiment", "", "experiment id")
	submit.Flags().StringVar(&name, "name", "", "run display name")
	submit.Flags().StringVar(&backend, "backend", "", "local|tekton|argo (default: the server's)")
	submit.Flags().StringVar(&idem, "idempotency-key", "", "a retried submit with the same key returns the first run")
	submit.Flags().StringArrayVar(&params, "param", nil, "NAME=VALUE (repeatable)")
	submit.Flags().BoolVar(&wait, "wait", false, "wait for the run to end, showing each task; exit 1 if it fails")
	submit.Flags().BoolVar(&noCache, "no-cache", false, "disable step caching for this run")

	get := &cobra.Command{
		Use:  "get RUN_ID",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.client().GetRun(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), r)
			}
			return printRun(cmd.OutOrStdout(), r)
		},
	}

	var pageSize int
	var pageToken, filter, sortBy string
	list := &cobra.Command{
		Use:  "list",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := g.client().ListRuns(cmd.Context(), client.ListRunsOptions{PageSize: pageSize, PageToken: pageToken, Filter: filter, SortBy: sortBy, ExperimentID: experiment})
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), resp)
			}
			var rows [][]string
			for _, r := range resp.Runs {
				rows = append(rows, []string{r.RunID, r.DisplayName, r.State, ts(r.CreatedAt), duration(&r)})
			}
			if err := table(cmd.OutOrStdout(), "ID\tNAME\tSTATE\tCREATED\tDURATION", rows); err != nil {
				return err
			}
			if resp.NextPageToken != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "next page: --page-token %s\n", resp.NextPageToken)
			}
			return nil
		},
	}
	list.Flags().IntVar(&pageSize, "page-size", 20, "runs per page")
	list.Flags().StringVar(&pageToken, "page-token", "", "page token from the previous page")
	list.Flags().StringVar(&filter, "filter", "", "KFP filter JSON")
	list.Flags().StringVar(&sortBy, "sort-by", "", `e.g. "created_at desc"`)
	list.Flags().StringVar(&experiment, "experiment", "", "only this experiment's runs")

	watch := &cobra.Command{
		Use:  "watch RUN_ID",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.client().GetRun(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return waitRun(cmd, g, r)
		},
	}
	terminate := &cobra.Command{
		Use:  "terminate RUN_ID",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.client().TerminateRun(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "run %s: terminating\n", args[0])
			return nil
		},
	}
	retry := &cobra.Command{
		Use:  "retry RUN_ID",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.client().RetryRun(cmd.Context(), args[0]); err != nil {
				return err
			}
			if !wait {
				fmt.Fprintf(cmd.OutOrStdout(), "run %s: retrying\n", args[0])
				return nil
			}
			r, err := g.client().GetRun(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return waitRun(cmd, g, r)
		},
	}
	retry.Flags().BoolVar(&wait, "wait", false, "wait for the run to end")
	clone := &cobra.Command{
		Use:   "clone RUN_ID",
		Short: "Start a new run with another run's pipeline and parameters, with --param overrides",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			overrides, err := parseParams(params)
			if err != nil {
				return err
			}
			r, err := g.client().CloneRun(cmd.Context(), args[0], client.CloneRequest{DisplayName: name, Parameters: overrides})
			if err != nil {
				return err
			}
			return afterCreate(cmd, g, r, wait)
		},
	}
	clone.Flags().StringArrayVar(&params, "param", nil, "NAME=VALUE override (repeatable)")
	clone.Flags().StringVar(&name, "name", "", "display name of the new run")
	clone.Flags().BoolVar(&wait, "wait", false, "wait for the new run to end")
	logs := &cobra.Command{
		Use:   "logs RUN_ID [TASK]",
		Short: "Print a task's log (every task's when TASK is omitted)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := g.client()
			if len(args) == 2 {
				return c.RunLog(cmd.Context(), args[0], args[1], cmd.OutOrStdout())
			}
			r, err := c.GetRun(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			for _, t := range tasksOf(r) {
				fmt.Fprintf(cmd.OutOrStdout(), "==> %s (%s) <==\n", t.TaskID, t.State)
				if err := c.RunLog(cmd.Context(), args[0], t.TaskID, cmd.OutOrStdout()); err != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "(no log: %v)\n", err)
				}
			}
			return nil
		},
	}
	archive := &cobra.Command{
		Use:  "archive RUN_ID",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.client().ArchiveRun(cmd.Context(), args[0])
		},
	}
	cmd.AddCommand(submit, get, list, watch, terminate, retry, clone, logs, archive)
	return cmd
}

// source is the pipeline a run or schedule uses: an inline spec or an uploaded version.
type source struct {
	spec json.RawMessage
	ref  *api.PipelineVersionReference
	name string // a default display name
}

// pipelineSource reads the pipeline from an IR FILE argument or --pipeline NAME
// (exactly one of them).
func pipelineSource(ctx context.Context, c *client.Client, args []string, pipeline, version string) (source, error) {
	switch {
	case len(args) == 1 && pipeline == "":
		data, err := readInput(args[0])
		if err != nil {
			return source{}, err
		}
		spec, err := specJSON(data)
		if err != nil {
			return source{}, fmt.Errorf("%s: %w", args[0], err)
		}
		return source{spec: spec, name: strings.TrimSuffix(filepath.Base(args[0]), filepath.Ext(args[0]))}, nil
	case len(args) == 0 && pipeline != "":
		ref, err := resolvePipeline(ctx, c, pipeline, version)
		if err != nil {
			return source{}, err
		}
		return source{ref: ref, name: pipeline}, nil
	}
	return source{}, fmt.Errorf("give either an IR FILE or --pipeline NAME")
}

// resolvePipeline finds a pipeline by id or name and picks the version.
func resolvePipeline(ctx context.Context, c *client.Client, nameOrID, version string) (*api.PipelineVersionReference, error) {
	pid := ""
	if p, err := c.GetPipeline(ctx, nameOrID); err == nil {
		pid = p.PipelineID
	} else {
		token := ""
		for pid == "" {
			resp, err := c.ListPipelines(ctx, 200, token)
			if err != nil {
				return nil, err
			}
			for _, p := range resp.Pipelines {
				if p.DisplayName == nameOrID || p.Name == nameOrID {
					pid = p.PipelineID
				}
			}
			if resp.NextPageToken == "" {
				break
			}
			token = resp.NextPageToken
		}
		if pid == "" {
			return nil, fmt.Errorf("pipeline %q not found", nameOrID)
		}
	}
	ref := &api.PipelineVersionReference{PipelineID: pid, PipelineVersionID: version}
	return ref, nil
}

func afterCreate(cmd *cobra.Command, g *globals, r *api.Run, wait bool) error {
	if !wait {
		if g.json {
			return printJSON(cmd.OutOrStdout(), r)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "run %s (%s): %s\n", r.RunID, r.DisplayName, r.State)
		return nil
	}
	fmt.Fprintf(cmd.OutOrStdout(), "run %s (%s) submitted\n", r.RunID, r.DisplayName)
	return waitRun(cmd, g, r)
}

// waitRun follows a run until it ends, printing each task's state change once, and
// returns an exit error when the run did not succeed.
func waitRun(cmd *cobra.Command, g *globals, r *api.Run) error {
	out := cmd.OutOrStdout()
	seen := map[string]string{}
	show := func(r *api.Run) {
		for _, t := range tasksOf(r) {
			if seen[t.TaskID] == t.State {
				continue
			}
			seen[t.TaskID] = t.State
			msg := ""
			if t.Error != nil && t.Error.Message != "" {
				msg = ": " + t.Error.Message
			}
			fmt.Fprintf(out, "  %-40s %s%s\n", t.TaskID, t.State, msg)
		}
	}
	final := r
	if !api.Terminal(r.State) {
		err := g.client().Watch(cmd.Context(), r.RunID, func(u *api.Run) bool {
			show(u)
			final = u
			return true
		})
		if err != nil {
			return err
		}
		// The stream carries the run as it changed; read it once more for the full record.
		if full, err := g.client().GetRun(cmd.Context(), r.RunID); err == nil {
			final = full
		}
	}
	show(final)
	if g.json {
		_ = printJSON(out, final)
	}
	fmt.Fprintf(out, "run %s: %s (%s)\n", final.RunID, final.State, duration(final))
	if final.State != api.StateSucceeded {
		msg := ""
		if final.Error != nil {
			msg = final.Error.Message
		}
		return &exitError{1, fmt.Errorf("run %s %s %s", final.RunID, strings.ToLower(final.State), msg)}
	}
	return nil
}

func tasksOf(r *api.Run) []api.TaskDetail {
	if r.RunDetails == nil {
		return nil
	}
	ts := append([]api.TaskDetail(nil), r.RunDetails.TaskDetails...)
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].TaskID < ts[j].TaskID })
	return ts
}

func printRun(w io.Writer, r *api.Run) error {
	fmt.Fprintf(w, "run:       %s\nname:      %s\nstate:     %s\ncreated:   %s\nduration:  %s\n", r.RunID, r.DisplayName, r.State, ts(r.CreatedAt), duration(r))
	if r.Error != nil {
		fmt.Fprintf(w, "error:     %s\n", r.Error.Message)
	}
	if r.RuntimeConfig != nil && len(r.RuntimeConfig.Parameters) > 0 {
		keys := make([]string, 0, len(r.RuntimeConfig.Parameters))
		for k := range r.RuntimeConfig.Parameters {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintln(w, "parameters:")
		for _, k := range keys {
			b, _ := json.Marshal(r.RuntimeConfig.Parameters[k])
			fmt.Fprintf(w, "  %s = %s\n", k, b)
		}
	}
	var rows [][]string
	for _, t := range tasksOf(r) {
		outs := []string{}
		keys := make([]string, 0, len(t.OutputParameters))
		for k := range t.OutputParameters {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			b, _ := json.Marshal(t.OutputParameters[k])
			outs = append(outs, k+"="+string(b))
		}
		for k, a := range t.Outputs {
			outs = append(outs, k+"="+strings.Join(a.URIs, ","))
		}
		rows = append(rows, []string{t.TaskID, t.State, strings.Join(outs, " ")})
	}
	if len(rows) > 0 {
		fmt.Fprintln(w)
		return table(w, "TASK\tSTATE\tOUTPUTS", rows)
	}
	return nil
}

func duration(r *api.Run) string {
	if r.CreatedAt.IsZero() {
		return "-"
	}
	end := time.Now()
	if r.FinishedAt != nil {
		end = *r.FinishedAt
	}
	return end.Sub(r.CreatedAt).Round(time.Millisecond * 100).String()
}

// specJSON turns an IR file (YAML or JSON, one or two documents) into the JSON that goes
// into a run's pipeline_spec: the PipelineSpec itself, or {"pipeline_spec", "platform_spec"}
// when a platform document is present — the shape KFP's API server takes.
func specJSON(data []byte) (json.RawMessage, error) {
	docs, err := ir.Documents(data)
	if err != nil {
		return nil, err
	}
	switch len(docs) {
	case 0:
		return nil, fmt.Errorf("empty document")
	case 1:
		return json.RawMessage(docs[0]), nil
	default:
		return json.Marshal(map[string]json.RawMessage{"pipeline_spec": docs[0], "platform_spec": docs[1]})
	}
}
