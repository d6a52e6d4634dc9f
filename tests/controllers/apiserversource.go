package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

// APIServerSource plays Knative Eventing's ApiServerSource in Resource mode for one
// resource in one namespace: every add and update of an object is POSTed to Sink as a
// CloudEvent of type dev.knative.apiserver.resource.add|update whose data is the whole
// object (apiVersion and kind included), as the Knative adapter sends it.
type APIServerSource struct {
	Client    dynamic.Interface
	Resource  schema.GroupVersionResource
	Namespace string
	Sink      string
	Log       *slog.Logger
	// Sent counts the events the sink accepted.
	Sent atomic.Int64
}

// Start watches until ctx ends.
func (s *APIServerSource) Start(ctx context.Context) error {
	c, err := cloudevents.NewClientHTTP(cloudevents.WithTarget(s.Sink))
	if err != nil {
		return err
	}
	f := dynamicinformer.NewFilteredDynamicSharedInformerFactory(s.Client, 0, s.Namespace, nil)
	inf := f.ForResource(s.Resource).Informer()
	var seq atomic.Int64
	send := func(typ string, obj any) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return
		}
		data, err := json.Marshal(u.Object)
		if err != nil {
			s.Log.Error("stand-in ApiServerSource: encode", "err", err)
			return
		}
		e := cloudevents.NewEvent()
		e.SetID(fmt.Sprintf("%s-%s-%d", u.GetUID(), u.GetResourceVersion(), seq.Add(1)))
		e.SetType("dev.knative.apiserver.resource." + typ)
		e.SetSource("https://kube-apiserver.e2e")
		e.SetSubject(fmt.Sprintf("/apis/%s/namespaces/%s/%s/%s", s.Resource.GroupVersion(), u.GetNamespace(), s.Resource.Resource, u.GetName()))
		e.SetTime(time.Now())
		e.SetExtension("kind", u.GetKind())
		e.SetExtension("name", u.GetName())
		e.SetExtension("namespace", u.GetNamespace())
		_ = e.SetData(cloudevents.ApplicationJSON, json.RawMessage(data))
		if res := c.Send(ctx, e); cloudevents.IsACK(res) {
			s.Sent.Add(1)
		} else if ctx.Err() == nil {
			s.Log.Warn("stand-in ApiServerSource: sink refused", "object", u.GetName(), "rv", u.GetResourceVersion(), "res", res)
		}
	}
	_, err = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { send("add", obj) },
		UpdateFunc: func(_, obj any) { send("update", obj) },
	})
	if err != nil {
		return err
	}
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	return nil
}
