package k8s

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

func writeKubeconfig(t *testing.T, host string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config")
	cfg := `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "` + host + `"}
users:
- name: u
  user: {token: "t"}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	flag := writeKubeconfig(t, "https://flag.example:6443")
	env := writeKubeconfig(t, "https://env.example:6443")
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // not in a cluster

	t.Setenv("KUBECONFIG", env)
	if cfg, err := LoadConfig(flag); err != nil || cfg.Host != "https://flag.example:6443" {
		t.Errorf("--kubeconfig wins over KUBECONFIG: %v %v", cfg, err)
	}
	if cfg, err := LoadConfig(""); err != nil || cfg.Host != "https://env.example:6443" {
		t.Errorf("KUBECONFIG: %v %v", cfg, err)
	}
	t.Setenv("KUBECONFIG", "")
	if _, err := LoadConfig(""); err == nil || !strings.Contains(err.Error(), filepath.Join(home, ".kube", "config")) {
		t.Errorf("nothing configured: %v, want an error naming ~/.kube/config", err)
	}
	if err := os.MkdirAll(filepath.Join(home, ".kube"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(writeKubeconfig(t, "https://home.example:6443"))
	if err := os.WriteFile(filepath.Join(home, ".kube", "config"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err := LoadConfig(""); err != nil || cfg.Host != "https://home.example:6443" {
		t.Errorf("~/.kube/config: %v %v", cfg, err)
	}
	if _, err := LoadConfig(filepath.Join(home, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a missing --kubeconfig: %v, want an error naming it", err)
	}
}

func TestNew(t *testing.T) {
	c, err := New(mustConfig(t), Options{})
	if err != nil || c.Kube == nil || c.Tekton == nil || c.Argo == nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Error("New(nil): no error")
	}
}

func mustConfig(t *testing.T) *rest.Config {
	t.Helper()
	cfg, err := LoadConfig(writeKubeconfig(t, "https://x.example:6443"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
