package artifacts

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// startS3ForInternalTest starts versitygw for tests inside this package,
// which cannot import s3test (it imports this package). Same rules: skip
// loudly without the binary, fail when PIPEFN_REQUIRE_S3=1.
func startS3ForInternalTest(t *testing.T) *S3 {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		home, _ := os.UserHomeDir()
		bin = filepath.Join(home, ".cache", "pipefn", "bin", "versitygw")
		if _, err := os.Stat(bin); err != nil {
			if os.Getenv("PIPEFN_REQUIRE_S3") == "1" {
				t.Fatalf("S3 tests required (PIPEFN_REQUIRE_S3=1): versitygw not found; run scripts/install-versitygw.sh")
			}
			t.Skip("SKIPPING S3 TEST: versitygw not found; run scripts/install-versitygw.sh")
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	data := t.TempDir()
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--port", addr, "--quiet", "posix", data)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID=internal-ak", "ROOT_SECRET_ACCESS_KEY=internal-secret")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(15 * time.Second); ; {
		if resp, err := http.Get("http://" + addr + "/"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not start: %s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "internal-ak")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "internal-secret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	st, err := NewS3(context.Background(), S3Options{Endpoint: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateBucket(context.Background(), "internal"); err != nil {
		t.Fatal(err)
	}
	return st
}
