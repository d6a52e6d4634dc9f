package handler

import (
	"context"
	"fmt"
	"time"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pipefn/pipefn/shared/launch"
	"github.com/pipefn/pipefn/shared/lineage"
	"github.com/pipefn/pipefn/shared/local"
)

// taskMeta is what the local backend learns of a task before it runs: its config and
// cache key, for the step cache and for the task's lineage record.
type taskMeta struct {
	config     launch.TaskConfig
	cacheKey   string
	cachedFrom string // execution id whose outputs a CACHED task reused
}

// cacheKey computes KFP's step-cache key of a task about to run (component spec, image,
// command, arguments, input parameter values and input artifacts by URI and digest).
func cacheKey(req local.CacheRequest) (string, error) {
	in := lineage.CacheKeyInput{Parameters: req.Inputs.Params, Artifacts: map[string][]lineage.ArtifactRef{}}
	comp, err := req.Config.ComponentSpec()
	if err != nil {
		return "", err
	}
	in.Component = comp
	if c := req.Config.Container; c != nil {
		in.Image, in.Command, in.Args = c.Image, c.Command, c.Args
	} else if len(req.Config.Importer) > 0 {
		// An importer's identity is its spec (artifact URI, type, metadata).
		in.Image, in.Command = "pipefn/importer", []string{string(req.Config.Importer)}
	}
	for name, list := range req.Inputs.Artifacts {
		for _, a := range list {
			in.Artifacts[name] = append(in.Artifacts[name], lineage.ArtifactRef{URI: a.GetUri(), Digest: digestOf(a)})
		}
	}
	return lineage.CacheKey(in)
}

func digestOf(a *pipelinespec.RuntimeArtifact) string {
	if md := a.GetMetadata(); md != nil {
		if d, ok := md.GetFields()[lineage.MetaDigest]; ok {
			return d.GetStringValue()
		}
	}
	return ""
}

// CacheStore is the lineage store as the step cache reads it.
type CacheStore interface {
	CacheLookup(ctx context.Context, team, key string, maxAge time.Duration) (lineage.CacheHit, bool, error)
}

// LineageCache serves the step cache from the lineage graph: a task whose key was
// recorded with a successful execution, no older than MaxAge (0: any age), reuses that
// execution's outputs.
type LineageCache struct {
	Store  CacheStore
	MaxAge time.Duration
}

// Lookup implements StepCache.
func (c *LineageCache) Lookup(ctx context.Context, team, key string) (launch.Outputs, string, bool, error) {
	hit, ok, err := c.Store.CacheLookup(ctx, team, key, c.MaxAge)
	if err != nil || !ok {
		return launch.Outputs{}, "", false, err
	}
	out, err := outputsOf(hit)
	if err != nil {
		return launch.Outputs{}, "", false, err
	}
	return out, hit.Execution.ID, true, nil
}

// outputsOf turns a cached execution's record back into task outputs.
func outputsOf(hit lineage.CacheHit) (launch.Outputs, error) {
	out := launch.Outputs{Params: map[string]*structpb.Value{}, Artifacts: map[string][]*pipelinespec.RuntimeArtifact{}}
	for k, v := range hit.Execution.OutputParameters {
		pv, err := structpb.NewValue(v)
		if err != nil {
			return launch.Outputs{}, fmt.Errorf("cached output %q: %w", k, err)
		}
		out.Params[k] = pv
	}
	for name, list := range hit.Outputs {
		for _, a := range list {
			ra := &pipelinespec.RuntimeArtifact{Name: a.Name, Uri: a.URI,
				Type: &pipelinespec.ArtifactTypeSchema{Kind: &pipelinespec.ArtifactTypeSchema_SchemaTitle{SchemaTitle: a.Type}}}
			md := map[string]any{}
			for k, v := range a.Metadata {
				md[k] = v
			}
			if a.Digest != "" {
				md[lineage.MetaDigest] = a.Digest
			}
			if a.Size > 0 {
				md[lineage.MetaSize] = float64(a.Size)
			}
			if len(md) > 0 {
				s, err := structpb.NewStruct(md)
				if err != nil {
					return launch.Outputs{}, fmt.Errorf("cached artifact %q metadata: %w", name, err)
				}
				ra.Metadata = s
			}
			out.Artifacts[name] = append(out.Artifacts[name], ra)
		}
	}
	return out, nil
}
