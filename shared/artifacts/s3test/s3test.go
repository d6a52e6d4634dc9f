// Package s3test starts a throwaway S3-compatible server (versitygw with its
// posix backend) for tests, so S3 code is tested against a real server rather
// than a fake. Install the binary with scripts/install-versitygw.sh.
package s3test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/pipefn/pipefn/shared/artifacts"
)

// Credentials of the server's single root account.
const (
	AccessKey = "pipefn-test-access"
	SecretKey = "pipefn-test-secret-key"
	Region    = "us-east-1"
)

// Server is a running versitygw.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT
	Dir      string // the posix backend's root; buckets are its subdirectories
}

// Binary finds versitygw on PATH or in $HOME/.cache/pipefn/bin.
func Binary() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err == nil {
		p := filepath.Join(home, ".cache", "pipefn", "bin", "versitygw")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("versitygw not found on PATH or in $HOME/.cache/pipefn/bin; run scripts/install-versitygw.sh")
}

// Start runs a fresh server for the test and stops it at cleanup. Without the
// binary the test is skipped loudly, or fails when PIPEFN_REQUIRE_S3=1 (CI).
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("PIPEFN_REQUIRE_S3") == "1" {
			t.Fatalf("S3 tests required (PIPEFN_REQUIRE_S3=1): %v", err)
		}
		t.Skipf("SKIPPING S3 TEST: %v (set PIPEFN_REQUIRE_S3=1 to make this a failure)", err)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--port", addr, "--quiet", "--region", Region, "posix", data)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+AccessKey, "ROOT_SECRET_ACCESS_KEY="+SecretKey)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	s := &Server{Endpoint: "http://" + addr, Dir: data}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(s.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return s
		}
		select {
		case <-exited:
			t.Fatalf("versitygw exited before serving: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not answer on %s within 15s: %v; log: %s", addr, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Store returns an S3 store talking to the server, with bucket created. It
// sets the AWS credential variables for the test so the SDK's default chain
// finds them, as the launcher does in a pod.
func (s *Server) Store(t testing.TB, bucket string, opts artifacts.S3Options) *artifacts.S3 {
	t.Helper()
	s.SetEnv(t)
	opts.Endpoint = s.Endpoint
	opts.PathStyle = true
	st, err := artifacts.NewS3(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateBucket(context.Background(), bucket); err != nil {
		t.Fatal(err)
	}
	return st
}

// SetEnv points the AWS SDK's default configuration at the server for the
// duration of the test (credentials, region, endpoint).
func (s *Server) SetEnv(t testing.TB) {
	t.Setenv("AWS_ACCESS_KEY_ID", AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", SecretKey)
	t.Setenv("AWS_REGION", Region)
	t.Setenv("AWS_ENDPOINT_URL_S3", s.Endpoint)
	// Keep the SDK from reading a developer's ~/.aws files.
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(os.DevNull))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(os.DevNull))
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
