package main

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"
)

func init() {
	extraCommands = append(extraCommands, newArtifactsCmd, newLineageCmd)
}

// artifactView is what the CLI shows of an artifact.
type artifactView struct {
	ArtifactID   string `json:"artifact_id"`
	Name         string `json:"name"`
	Type         string `json:"type"`
	URI          string `json:"uri"`
	ProducerTask string `json:"producer_task"`
	Size         int64  `json:"size"`
}

func newArtifactsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "artifacts RUN_ID",
		Short: "List a run's artifacts",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Artifacts []artifactView `json:"artifacts"`
			}
			var raw map[string]any
			c := g.client()
			if g.json {
				if err := c.Get(cmd.Context(), "/runs/"+url.PathEscape(args[0])+"/artifacts", nil, &raw); err != nil {
					return err
				}
				return printJSON(cmd.OutOrStdout(), raw)
			}
			if err := c.Get(cmd.Context(), "/runs/"+url.PathEscape(args[0])+"/artifacts", nil, &out); err != nil {
				return err
			}
			var rows [][]string
			for _, a := range out.Artifacts {
				rows = append(rows, []string{a.ArtifactID, a.ProducerTask, a.Name, a.Type, strconv.FormatInt(a.Size, 10), a.URI})
			}
			return table(cmd.OutOrStdout(), "ID\tTASK\tNAME\tTYPE\tSIZE\tURI", rows)
		},
	}
}

func newLineageCmd(g *globals) *cobra.Command {
	var direction string
	var depth int
	cmd := &cobra.Command{
		Use:   "lineage ARTIFACT_ID",
		Short: "Show where an artifact came from (upstream) or what it fed (downstream)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var graph struct {
				Nodes []struct {
					ID   string `json:"id"`
					Kind string `json:"kind"`
					Name string `json:"name"`
					URI  string `json:"uri"`
				} `json:"nodes"`
				Edges []struct {
					From string `json:"from"`
					To   string `json:"to"`
					Type string `json:"type"`
				} `json:"edges"`
			}
			q := url.Values{"direction": {direction}, "depth": {strconv.Itoa(depth)}}
			var raw map[string]any
			c := g.client()
			path := "/artifacts/" + url.PathEscape(args[0]) + "/lineage"
			if g.json {
				if err := c.Get(cmd.Context(), path, q, &raw); err != nil {
					return err
				}
				return printJSON(cmd.OutOrStdout(), raw)
			}
			if err := c.Get(cmd.Context(), path, q, &graph); err != nil {
				return err
			}
			names := map[string]string{}
			var rows [][]string
			for _, n := range graph.Nodes {
				names[n.ID] = n.Kind + " " + n.Name
				rows = append(rows, []string{n.Kind, n.ID, n.Name, n.URI})
			}
			if err := table(cmd.OutOrStdout(), "KIND\tID\tNAME\tURI", rows); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout())
			for _, e := range graph.Edges {
				fmt.Fprintf(cmd.OutOrStdout(), "%s -[%s]-> %s\n", names[e.From], e.Type, names[e.To])
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&direction, "direction", "upstream", "upstream|downstream")
	cmd.Flags().IntVar(&depth, "depth", 5, "how many hops")
	return cmd
}
