package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/pipefn/pipefn/shared/api"
)

func init() { extraCommands = append(extraCommands, newScheduleCmd) }

func newScheduleCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "schedule", Short: "Recurring runs: create, list, get, enable, disable, delete, next"}
	var (
		name, pipeline, version, cron, tz, catchup, experiment, backend, start, end string
		every                                                                       time.Duration
		params                                                                      []string
		maxConc                                                                     int64
		catchCap                                                                    int
		disabled                                                                    bool
	)
	create := &cobra.Command{
		Use:   "create [FILE]",
		Short: "Create a recurring run of an IR file or of an uploaded pipeline (--pipeline)",
		Long: `Create a recurring run. --cron takes five fields (minute hour day month weekday) or
KFP's six with seconds first; --every takes a period (e.g. 1h30m). --tz names an IANA zone
(default UTC); daylight-saving gaps fire once at the next valid instant, repeated wall
times fire once. --catchup says what happens to slots missed while pipefn was down:
none, latest, or all (up to --catchup-cap).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c := g.client()
			overrides, err := parseParams(params)
			if err != nil {
				return err
			}
			rr := &api.RecurringRun{
				DisplayName: name, ExperimentID: experiment, Backend: backend, TimeZone: tz,
				Catchup: catchup, CatchupCap: catchCap, MaxConcurrency: maxConc,
				RuntimeConfig: &api.RuntimeConfig{Parameters: overrides}, Mode: api.ModeEnable,
			}
			if disabled {
				rr.Mode = api.ModeDisable
			}
			var st, en *time.Time
			if start != "" {
				t, err := time.Parse(time.RFC3339, start)
				if err != nil {
					return fmt.Errorf("--start %q: want RFC 3339 (2026-01-02T15:04:05Z)", start)
				}
				st = &t
			}
			if end != "" {
				t, err := time.Parse(time.RFC3339, end)
				if err != nil {
					return fmt.Errorf("--end %q: want RFC 3339 (2026-01-02T15:04:05Z)", end)
				}
				en = &t
			}
			switch {
			case cron != "" && every == 0:
				rr.Trigger.CronSchedule = &api.CronSchedule{Cron: cron, StartTime: st, EndTime: en}
			case cron == "" && every > 0:
				rr.Trigger.PeriodicSchedule = &api.PeriodicSchedule{IntervalSecond: int64(every / time.Second), StartTime: st, EndTime: en}
			default:
				return fmt.Errorf("give exactly one of --cron and --every")
			}
			src, err := pipelineSource(ctx, c, args, pipeline, version)
			if err != nil {
				return err
			}
			rr.PipelineSpec, rr.PipelineVersionReference = src.spec, src.ref
			if rr.DisplayName == "" {
				rr.DisplayName = src.name
			}
			out, err := c.CreateRecurringRun(ctx, rr)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "recurring run %s (%s): %s\n", out.RecurringRunID, out.DisplayName, out.Status)
			return nil
		},
	}
	f := create.Flags()
	f.StringVar(&name, "name", "", "display name")
	f.StringVar(&pipeline, "pipeline", "", "schedule an uploaded pipeline (name or id)")
	f.StringVar(&version, "version", "", "pipeline version id (default: the newest at creation)")
	f.StringVar(&cron, "cron", "", `cron expression, e.g. "0 6 * * 1-5" or KFP's "0 0 6 * * 1-5"`)
	f.DurationVar(&every, "every", 0, "fire every period instead of on a cron expression")
	f.StringVar(&tz, "tz", "", "IANA time zone of the cron expression (default UTC)")
	f.StringVar(&catchup, "catchup", "", "none|latest|all: what to do with slots missed while down")
	f.IntVar(&catchCap, "catchup-cap", 0, "most missed slots fired with --catchup all")
	f.Int64Var(&maxConc, "max-concurrency", 0, "most runs of this schedule at once (0: KFP's default)")
	f.StringVar(&experiment, "experiment", "", "experiment id of the runs")
	f.StringVar(&backend, "backend", "", "backend of the runs")
	f.StringVar(&start, "start", "", "first instant (RFC 3339)")
	f.StringVar(&end, "end", "", "last instant (RFC 3339)")
	f.StringArrayVar(&params, "param", nil, "NAME=VALUE (repeatable; [[ScheduledTime]] and [[Index]] are substituted)")
	f.BoolVar(&disabled, "disabled", false, "create it disabled")

	list := &cobra.Command{
		Use:  "list",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := g.client().ListRecurringRuns(cmd.Context(), 200, "")
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), resp)
			}
			var rows [][]string
			for _, r := range resp.RecurringRuns {
				rows = append(rows, []string{r.RecurringRunID, r.DisplayName, r.Status, triggerText(r), zoneOr(r.TimeZone)})
			}
			return table(cmd.OutOrStdout(), "ID\tNAME\tSTATUS\tTRIGGER\tZONE", rows)
		},
	}
	get := &cobra.Command{
		Use:  "get ID",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.client().GetRecurringRun(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), r)
		},
	}
	toggle := func(use string, enabled bool) *cobra.Command {
		return &cobra.Command{
			Use:  use + " ID",
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := g.client().SetRecurringRunEnabled(cmd.Context(), args[0], enabled); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "recurring run %s: %sd\n", args[0], use)
				return nil
			},
		}
	}
	del := &cobra.Command{
		Use:  "delete ID",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.client().DeleteRecurringRun(cmd.Context(), args[0])
		},
	}
	var count int
	next := &cobra.Command{
		Use:   "next ID",
		Short: "Print the coming fire times",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := g.client().NextFireTimes(cmd.Context(), args[0], count)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), n)
			}
			for _, t := range n.NextFireTimes {
				fmt.Fprintln(cmd.OutOrStdout(), t)
			}
			return nil
		},
	}
	next.Flags().IntVar(&count, "count", 5, "how many fire times")
	cmd.AddCommand(create, list, get, toggle("enable", true), toggle("disable", false), del, next)
	return cmd
}

func triggerText(r api.RecurringRun) string {
	if r.Trigger.CronSchedule != nil {
		return "cron " + r.Trigger.CronSchedule.Cron
	}
	if r.Trigger.PeriodicSchedule != nil {
		return "every " + (time.Duration(r.Trigger.PeriodicSchedule.IntervalSecond) * time.Second).String()
	}
	return "-"
}

func zoneOr(z string) string {
	if z == "" {
		return "UTC"
	}
	return z
}
