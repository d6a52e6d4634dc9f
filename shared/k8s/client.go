// Package k8s is pipefn's only door to Kubernetes: it alone imports client-go and the
// Tekton and Argo clientsets. It creates the compiled PipelineRun or Workflow of a run
// attempt (idempotently, under a client-side rate limit), cancels and prunes them, reads
// their live state back as pipefn run and task states, and streams task pod logs.
package k8s

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	argoclient "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	"golang.org/x/time/rate"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pipefn/pipefn/shared/compile"
)

// Backend names, as runs name them.
const (
	BackendTekton = "tekton"
	BackendArgo   = "argo"
)

// Labels and annotations shared/k8s adds to every object it creates, beside the
// compilers' own (compile.LabelRunID, LabelTeam, LabelPipelineVersion).
const (
	// LabelAttempt is the run attempt the object executes (0, then 1, 2, ... per retry).
	LabelAttempt = "pipefn.dev/attempt"
	// AnnotationRunID carries the run id verbatim: a label value may have had to be
	// shortened or sanitised, an annotation need not be.
	AnnotationRunID = "pipefn.dev/run-id"
)

// Options tune a Client. Zero values take the defaults noted.
type Options struct {
	// QPS and Burst bound every request of the client (client-go's own token bucket).
	// Default 20 and 40.
	QPS   float32
	Burst int
	// CreatesPerSecond and CreateBurst bound object creations on top of QPS, so that a
	// burst of submissions queues here rather than flooding the API server. Default 10
	// and 20.
	CreatesPerSecond float64
	CreateBurst      int
	// Retention is how long a finished object stays in the cluster before Prune deletes
	// it (the run's record lives in Redis, not in etcd). Default 24h; <0 keeps forever.
	Retention time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Client talks to one cluster.
type Client struct {
	Kube   kubernetes.Interface
	Tekton tektonclient.Interface
	Argo   argoclient.Interface

	creates   *rate.Limiter
	retention time.Duration
	now       func() time.Time
}

// LoadConfig finds the cluster's REST config the usual way: an explicit kubeconfig path
// first, then $KUBECONFIG, then the in-cluster service account, then ~/.kube/config.
func LoadConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("k8s: kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	if env := os.Getenv("KUBECONFIG"); env != "" {
		rules := &clientcmd.ClientConfigLoadingRules{Precedence: filepath.SplitList(env)}
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("k8s: KUBECONFIG=%s: %w", env, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err == nil {
		return cfg, nil
	}
	if !errors.Is(err, rest.ErrNotInCluster) {
		return nil, fmt.Errorf("k8s: in-cluster config: %w", err)
	}
	home, herr := os.UserHomeDir()
	if herr != nil {
		return nil, fmt.Errorf("k8s: no kubeconfig: not in a cluster, KUBECONFIG unset, and no home directory (%v)", herr)
	}
	path := filepath.Join(home, ".kube", "config")
	if _, serr := os.Stat(path); serr != nil {
		return nil, fmt.Errorf("k8s: no kubeconfig: not in a cluster, KUBECONFIG unset, and %s: %v", path, serr)
	}
	cfg, err = clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("k8s: kubeconfig %s: %w", path, err)
	}
	return cfg, nil
}

// New builds a Client for cfg. cfg is copied; its QPS and Burst are set from opts.
func New(cfg *rest.Config, opts Options) (*Client, error) {
	if cfg == nil {
		return nil, errors.New("k8s: nil REST config")
	}
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = opts.QPS, opts.Burst
	if c.QPS <= 0 {
		c.QPS = 20
	}
	if c.Burst <= 0 {
		c.Burst = 40
	}
	if c.UserAgent == "" {
		c.UserAgent = "pipefn"
	}
	kube, err := kubernetes.NewForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("k8s: kubernetes client for %s: %w", c.Host, err)
	}
	tk, err := tektonclient.NewForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("k8s: tekton client for %s: %w", c.Host, err)
	}
	ar, err := argoclient.NewForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("k8s: argo client for %s: %w", c.Host, err)
	}
	return NewForClients(kube, tk, ar, opts), nil
}

// NewForClients builds a Client over existing clientsets (fakes in unit tests).
func NewForClients(kube kubernetes.Interface, tk tektonclient.Interface, ar argoclient.Interface, opts Options) *Client {
	perSec, burst := opts.CreatesPerSecond, opts.CreateBurst
	if perSec <= 0 {
		perSec = 10
	}
	if burst <= 0 {
		burst = 20
	}
	ret := opts.Retention
	if ret == 0 {
		ret = 24 * time.Hour
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Client{Kube: kube, Tekton: tk, Argo: ar, creates: rate.NewLimiter(rate.Limit(perSec), burst), retention: ret, now: now}
}

// waitCreate takes a token for one creation, or gives up with ctx.
func (c *Client) waitCreate(ctx context.Context) error {
	if err := c.creates.Wait(ctx); err != nil {
		return fmt.Errorf("k8s: create rate limit: %w", err)
	}
	return nil
}

// maxName is the longest object name we make: a DNS-1123 label, which both engines'
// derived names (TaskRuns, pods) build on.
const maxName = 63

// ObjectName is the name of a run attempt's PipelineRun or Workflow:
// "pf-<run id in DNS-1123 form>-a<attempt>". It is a pure function of (run, attempt), so a
// redelivered submission names the same object and the API server refuses a duplicate.
// Ids too long for one label are cut and keep an 8-hex hash of the whole id.
func ObjectName(runID string, attempt int) string {
	id := compile.DNSLabel(runID)
	suffix := "-a" + strconv.Itoa(attempt)
	if room := maxName - len("pf-") - len(suffix); len(id) > room {
		h := fnv.New32a()
		_, _ = h.Write([]byte(runID))
		id = strings.TrimRight(id[:room-9], "-") + "-" + fmt.Sprintf("%08x", h.Sum32())
	}
	if id == "" {
		h := fnv.New32a()
		_, _ = h.Write([]byte(runID))
		id = fmt.Sprintf("%08x", h.Sum32())
	}
	return "pf-" + id + suffix
}
