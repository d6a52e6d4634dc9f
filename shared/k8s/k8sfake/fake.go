// Package k8sfake builds a shared/k8s Client over the clientsets' in-memory fakes, for
// the unit tests of packages that must not import client-go themselves. The real API
// server suite is tests/k8s.
package k8sfake

import (
	argofake "github.com/argoproj/argo-workflows/v3/pkg/client/clientset/versioned/fake"
	tektonfake "github.com/tektoncd/pipeline/pkg/client/clientset/versioned/fake"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/pipefn/pipefn/shared/k8s"
)

// Cluster is a fake cluster and a Client over it.
type Cluster struct {
	*k8s.Client
	KubeFake   *kubefake.Clientset
	TektonFake *tektonfake.Clientset
	ArgoFake   *argofake.Clientset
}

// New returns an empty fake cluster.
func New(opts k8s.Options) *Cluster {
	c := &Cluster{KubeFake: kubefake.NewSimpleClientset(), TektonFake: tektonfake.NewSimpleClientset(), ArgoFake: argofake.NewSimpleClientset()}
	c.Client = k8s.NewForClients(c.KubeFake, c.TektonFake, c.ArgoFake, opts)
	return c
}

// FailCreates makes every create of resource ("pipelineruns", "workflows") fail with err.
func (c *Cluster) FailCreates(resource string, err error) {
	react := func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, err }
	c.TektonFake.PrependReactor("create", resource, react)
	c.ArgoFake.PrependReactor("create", resource, react)
}
