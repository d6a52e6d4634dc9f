package argo

import (
	"bytes"
	"encoding/json"
	"fmt"

	apiv1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WorkspaceMountPath is where the run's shared workspace
// (kfp-kubernetes pipelineConfig.workspace) is mounted in every task, as in
// KFP and in pipefn's Tekton backend.
const WorkspaceMountPath = "/kfp-workspace"

const workspaceVolume = "kfp-workspace"

// workspaceClaim returns the workflow's volume claim template for the
// pipeline workspace, or nil when the pipeline asks for none. Argo creates
// the PVC when the run starts and every task mounts it: size is the storage
// request (ReadWriteOnce unless the patch says otherwise) and pvcSpecPatch
// is laid over the spec.
func (c *compiler) workspaceClaim() (*apiv1.PersistentVolumeClaim, error) {
	k := c.p.Kubernetes
	if k == nil || k.PipelineConfig == nil || k.PipelineConfig.Workspace == nil {
		return nil, nil
	}
	ws := k.PipelineConfig.Workspace
	const where = "argo: platforms.kubernetes.pipelineConfig.workspace"
	if ws.Size == "" {
		return nil, fmt.Errorf("%s.size: a workspace needs a size", where)
	}
	spec := map[string]any{
		"accessModes": []string{"ReadWriteOnce"},
		"resources":   map[string]any{"requests": map[string]string{"storage": ws.Size}},
	}
	if ws.Kubernetes != nil {
		for k, v := range ws.Kubernetes.PvcSpecPatch {
			spec[k] = v
		}
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", where, err)
	}
	var pvc apiv1.PersistentVolumeClaimSpec
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pvc); err != nil {
		return nil, fmt.Errorf("%s.kubernetes.pvcSpecPatch: not a PersistentVolumeClaim spec: %v", where, err)
	}
	return &apiv1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: workspaceVolume}, Spec: pvc}, nil
}
