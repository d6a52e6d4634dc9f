package tekton

import (
	"bytes"
	"encoding/json"
	"fmt"

	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WorkspaceMountPath is where the run's shared workspace (kfp-kubernetes
// pipelineConfig.workspace) is mounted in every task, as in KFP.
const WorkspaceMountPath = "/kfp-workspace"

const workspaceName = "kfp-workspace"

// workspaceClaim builds the PVC spec of the pipeline workspace, or nil when
// the pipeline asks for none: size becomes the storage request, then
// pvcSpecPatch is applied over the spec (ReadWriteOnce by default).
func (c *compiler) workspaceClaim() (*corev1.PersistentVolumeClaim, error) {
	k := c.p.Kubernetes
	if k == nil || k.PipelineConfig == nil || k.PipelineConfig.Workspace == nil {
		return nil, nil
	}
	ws := k.PipelineConfig.Workspace
	const where = "platforms.kubernetes.pipelineConfig.workspace"
	if ws.Size == "" {
		return nil, fmt.Errorf("%s.size: a workspace needs a size", where)
	}
	spec := map[string]any{
		"accessModes": []any{"ReadWriteOnce"},
		"resources":   map[string]any{"requests": map[string]any{"storage": ws.Size}},
	}
	if ws.Kubernetes != nil {
		for key, v := range ws.Kubernetes.PvcSpecPatch {
			spec[key] = v
		}
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", where, err)
	}
	var pvc corev1.PersistentVolumeClaimSpec
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pvc); err != nil {
		return nil, fmt.Errorf("%s.kubernetes.pvcSpecPatch: not a PersistentVolumeClaim spec: %v", where, err)
	}
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: workspaceName}, Spec: pvc}, nil
}

// useWorkspace mounts the pipeline workspace into a task.
func useWorkspace(pt *tektonv1.PipelineTask) {
	pt.Workspaces = append(pt.Workspaces, tektonv1.WorkspacePipelineTaskBinding{Name: workspaceName, Workspace: workspaceName})
	pt.TaskSpec.Workspaces = append(pt.TaskSpec.Workspaces, tektonv1.WorkspaceDeclaration{Name: workspaceName, MountPath: WorkspaceMountPath})
}
