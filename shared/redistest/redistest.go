// Package redistest starts throwaway real redis-server processes for tests. pipefn's tests
// never fake Redis: Lua scripts, streams and blocking reads behave exactly as in production
// only on the real server.
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// installHint tells a developer how to get the server when it is missing; a silent skip
// would let the whole state layer go untested.
const installHint = "redis-server is not on PATH: run `make test-deps` (installs it with apt-get) " +
	"or install Redis 7 yourself (apt-get install redis-server / brew install redis)"

// Server is one running redis-server owned by a test.
type Server struct {
	tb   testing.TB
	bin  string
	dir  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	log  *os.File
}

// Start launches a redis-server for tb and returns a client connected to it. The server
// and the client are closed in tb.Cleanup.
func Start(tb testing.TB) *redis.Client {
	tb.Helper()
	s := StartServer(tb)
	return s.Client()
}

// StartServer launches a redis-server on a free loopback port with persistence off and a
// temporary working directory; it fails tb loudly when redis-server is not installed.
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redistest: %s (%v)", installHint, err)
	}
	s := &Server{tb: tb, bin: bin, dir: tb.TempDir()}
	tb.Cleanup(s.stop)
	// A port picked from a closed listener can be taken by someone else before redis binds
	// it; retry a few times with fresh ports rather than fail a test on a race.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("redistest: find a free port: %v", err)
		}
		s.port = port
		if lastErr = s.launch(); lastErr == nil {
			return s
		}
	}
	tb.Fatalf("redistest: start redis-server: %v", lastErr)
	return nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Client returns a new client for the server, closed in the test's cleanup.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	s.tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Restart kills the server with SIGKILL (a crash, no shutdown save) and starts it again on
// the same port and directory. With persistence off the data is gone afterwards, which is
// what crash tests of an unpersisted Redis need to see.
func (s *Server) Restart() {
	s.tb.Helper()
	s.kill(syscall.SIGKILL)
	if err := s.launch(); err != nil {
		s.tb.Fatalf("redistest: restart redis-server on %s: %v", s.Addr(), err)
	}
}

// Stop kills the server; later commands fail with connection errors until Restart.
func (s *Server) Stop() { s.kill(syscall.SIGKILL) }

func (s *Server) launch() error {
	logPath := filepath.Join(s.dir, "redis.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--protected-mode", "no",
		"--daemonize", "no",
	)
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("exec %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done, s.log = cmd, done, logf
	s.mu.Unlock()

	if err := s.waitReady(done); err != nil {
		s.kill(syscall.SIGKILL)
		out, _ := os.ReadFile(logPath)
		return fmt.Errorf("%w; server log:\n%s", err, out)
	}
	return nil
}

// waitReady polls PING until the server answers, exits, or 10s pass.
func (s *Server) waitReady(done <-chan struct{}) error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return errors.New("redis-server exited before answering PING on " + s.Addr())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s did not answer PING within 10s: %v", s.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) kill(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done, logf := s.cmd, s.done, s.log
	s.cmd, s.done, s.log = nil, nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	logf.Close()
}

// stop shuts the server down at cleanup; SIGTERM is enough as nothing is persisted.
func (s *Server) stop() { s.kill(syscall.SIGTERM) }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
