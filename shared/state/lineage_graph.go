package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/redis/go-redis/v9"

	"github.com/pipefn/pipefn/shared/api"
	"github.com/pipefn/pipefn/shared/lineage"
)

// Lineage walks the graph of team from startID (an artifact or an execution id) in
// direction dir, breadth first, up to depth edges away. Each level costs one pipelined
// round trip that reads the level's records and their next neighbours, so a query's cost
// depends on the subgraph it visits, never on the size of the graph. The walk stops
// adding nodes at lineage.MaxNodes and then reports Truncated. An unknown start is
// api.KindNotFound; nodes and edges come back sorted (by depth, then id; by from, to).
func (s *Store) Lineage(ctx context.Context, team, startID string, dir lineage.Direction, depth int) (lineage.Graph, error) {
	if err := checkTeam(team); err != nil {
		return lineage.Graph{}, err
	}
	switch {
	case !lineage.IsArtifactID(startID) && !lineage.IsExecutionID(startID):
		return lineage.Graph{}, api.Errorf(api.KindInvalid, "lineage: %q is neither an artifact (art-...) nor an execution (exe-...) id", startID)
	case dir != lineage.Upstream && dir != lineage.Downstream:
		return lineage.Graph{}, api.Errorf(api.KindInvalid, "lineage: direction %q: want upstream or downstream", dir)
	case depth < 0 || depth > lineage.MaxDepth:
		return lineage.Graph{}, api.Errorf(api.KindInvalid, "lineage: depth %d: want 0..%d", depth, lineage.MaxDepth)
	}
	g := lineage.Graph{Nodes: []lineage.Node{}, Edges: []lineage.Edge{}}
	visited := map[string]bool{startID: true}
	edgeSeen := map[lineage.Edge]bool{}
	frontier := []string{startID}
	for level := 0; len(frontier) > 0; level++ {
		expand := level < depth
		recs := make([]*redis.StringCmd, len(frontier))
		nbrs := make([]redis.Cmder, len(frontier))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range frontier {
				art := lineage.IsArtifactID(id)
				if art {
					recs[i] = p.Get(ctx, linKey(team, "art", id))
				} else {
					recs[i] = p.Get(ctx, linKey(team, "exe", id))
				}
				if !expand {
					continue
				}
				switch {
				case art && dir == lineage.Upstream:
					nbrs[i] = p.Get(ctx, linKey(team, "art-prod", id))
				case art:
					nbrs[i] = p.SMembers(ctx, linKey(team, "art-cons", id))
				case dir == lineage.Upstream:
					nbrs[i] = p.SMembers(ctx, linKey(team, "exe-in", id))
				default:
					nbrs[i] = p.SMembers(ctx, linKey(team, "exe-out", id))
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return lineage.Graph{}, unavailable("lineage", err)
		}
		var next []string
		for i, id := range frontier {
			node, err := decodeNode(id, recs[i], level)
			if err != nil {
				return lineage.Graph{}, err
			}
			if level == 0 && node.Missing {
				return lineage.Graph{}, api.Errorf(api.KindNotFound, "lineage: %q not found", id)
			}
			g.Nodes = append(g.Nodes, node)
			if nbrs[i] == nil {
				continue
			}
			for _, e := range neighbourEdges(id, node, dir, nbrs[i]) {
				other := e.From
				if other == id {
					other = e.To
				}
				if !visited[other] {
					if len(visited) >= lineage.MaxNodes {
						g.Truncated = true
						continue
					}
					visited[other] = true
					next = append(next, other)
				}
				if !edgeSeen[e] {
					edgeSeen[e] = true
					g.Edges = append(g.Edges, e)
				}
			}
		}
		frontier = next
	}
	sort.Slice(g.Nodes, func(i, j int) bool {
		a, b := g.Nodes[i], g.Nodes[j]
		if a.Depth != b.Depth {
			return a.Depth < b.Depth
		}
		return a.ID < b.ID
	})
	sort.Slice(g.Edges, func(i, j int) bool {
		a, b := g.Edges[i], g.Edges[j]
		if a.From != b.From {
			return a.From < b.From
		}
		if a.To != b.To {
			return a.To < b.To
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		return a.Name < b.Name
	})
	return g, nil
}

// decodeNode turns a record read into a node; a record that is absent yields a node
// marked Missing (known only from an edge, e.g. the producer's event has not arrived).
func decodeNode(id string, cmd *redis.StringCmd, depth int) (lineage.Node, error) {
	raw, err := cmd.Result()
	if errors.Is(err, redis.Nil) {
		kind := lineage.KindExecution
		if lineage.IsArtifactID(id) {
			kind = lineage.KindArtifact
		}
		return lineage.Node{ID: id, Kind: kind, Depth: depth, Missing: true}, nil
	}
	if err != nil {
		return lineage.Node{}, unavailable("lineage", err)
	}
	if lineage.IsArtifactID(id) {
		var a lineage.Artifact
		if err := json.Unmarshal([]byte(raw), &a); err != nil {
			return lineage.Node{}, fmt.Errorf("lineage: stored artifact %s is corrupt: %w", id, err)
		}
		return lineage.ArtifactNode(a, depth), nil
	}
	var e lineage.Execution
	if err := json.Unmarshal([]byte(raw), &e); err != nil {
		return lineage.Node{}, fmt.Errorf("lineage: stored execution %s is corrupt: %w", id, err)
	}
	return lineage.ExecutionNode(e, depth), nil
}

// neighbourEdges reads the edges of node id from its neighbour command, oriented as the
// data flows: INPUT artifact -> execution, OUTPUT execution -> artifact.
func neighbourEdges(id string, node lineage.Node, dir lineage.Direction, cmd redis.Cmder) []lineage.Edge {
	var out []lineage.Edge
	switch c := cmd.(type) {
	case *redis.StringCmd: // art-prod: the artifact's producer
		if prod := c.Val(); prod != "" {
			out = append(out, lineage.Edge{From: prod, To: id, Type: lineage.Output, Name: node.Name})
		}
	case *redis.StringSliceCmd:
		for _, m := range c.Val() {
			if lineage.IsArtifactID(id) { // art-cons: "<exe>\t<input name>"
				exe, name := parseConsumer(m)
				out = append(out, lineage.Edge{From: id, To: exe, Type: lineage.Input, Name: name})
				continue
			}
			ev, ok := parseEventMember(m)
			if !ok {
				continue
			}
			if dir == lineage.Upstream {
				out = append(out, lineage.Edge{From: ev.artID, To: id, Type: lineage.Input, Name: ev.name})
			} else {
				out = append(out, lineage.Edge{From: id, To: ev.artID, Type: lineage.Output, Name: ev.name})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].From != out[j].From {
			return out[i].From < out[j].From
		}
		return out[i].To < out[j].To
	})
	return out
}
