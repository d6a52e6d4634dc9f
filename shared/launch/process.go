package launch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

const defaultGrace = 10 * time.Second

// runCommand runs argv in a new process group. Output is copied through pipes
// the launcher owns, so the command's end is observed when the main process
// exits, not when the last background child closes its stdout. When ctx is
// cancelled the group gets SIGTERM, then SIGKILL after the grace period; when
// the main process exits, whatever it left running in its group is killed so
// a task never outlives itself.
func runCommand(ctx context.Context, taskID string, argv, environ []string, env Env) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("launch: task %s: not started: %w", taskID, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = environ
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var wg sync.WaitGroup
	var closers []io.Closer
	attach := func(w io.Writer) (*os.File, error) {
		if w == nil {
			w = io.Discard
		}
		if f, ok := w.(*os.File); ok {
			return f, nil
		}
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		closers = append(closers, pw)
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.Copy(w, pr)
			pr.Close()
		}()
		return pw, nil
	}
	stdout, err := attach(env.Stdout)
	if err != nil {
		return fmt.Errorf("launch: task %s: %w", taskID, err)
	}
	// One writer for both streams gets one pipe, so it is never written
	// from two goroutines at once (a bytes.Buffer would be corrupted).
	stderr := stdout
	if !sameWriter(env.Stdout, env.Stderr) {
		if stderr, err = attach(env.Stderr); err != nil {
			closeAll(closers)
			return fmt.Errorf("launch: task %s: %w", taskID, err)
		}
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	startErr := cmd.Start()
	// The child has its copies of the write ends; ours must go so the copiers
	// see EOF once every process of the group is gone.
	closeAll(closers)
	if startErr != nil {
		wg.Wait()
		return fmt.Errorf("launch: task %s: start %s: %w", taskID, argv[0], startErr)
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var waitErr error
	cancelled := false
	select {
	case waitErr = <-done:
	case <-ctx.Done():
		cancelled = true
		grace := env.GracePeriod
		if grace <= 0 {
			grace = defaultGrace
		}
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		t := time.NewTimer(grace)
		select {
		case waitErr = <-done:
			t.Stop()
		case <-t.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			waitErr = <-done
		}
	}
	// Stragglers (background children) of the group; ESRCH when none.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	wg.Wait()
	if cancelled {
		return fmt.Errorf("launch: task %s: cancelled, process group %d terminated: %w", taskID, pgid, context.Cause(ctx))
	}
	if waitErr != nil {
		var ee *exec.ExitError
		if errors.As(waitErr, &ee) {
			code := ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
			return &ExitError{TaskID: taskID, Code: code, Err: waitErr}
		}
		return fmt.Errorf("launch: task %s: %w", taskID, waitErr)
	}
	return nil
}

func closeAll(cs []io.Closer) {
	for _, c := range cs {
		c.Close()
	}
}

// sameWriter reports whether a and b are the same comparable writer.
func sameWriter(a, b io.Writer) (same bool) {
	defer func() {
		if recover() != nil { // incomparable dynamic types
			same = false
		}
	}()
	return a == b
}
