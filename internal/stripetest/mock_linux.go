// Tying stripe-mock's life to the test binary's on Linux, so one stripe-mock
// can serve every test without outliving them.
package stripetest

import (
	"os/exec"
	"runtime"
	"syscall"
)

const sharedMockSupported = true

// startForLife starts cmd so that the kernel kills it when the test binary
// exits, however it exits. Pdeathsig fires when the thread that forked the
// child ends, not the process, so the fork happens on a goroutine locked to
// its thread, which then waits for the child and never unlocks: the thread
// lives as long as stripe-mock does.
func startForLife(cmd *exec.Cmd, started chan<- error, exited chan<- struct{}) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	go func() {
		runtime.LockOSThread()
		defer close(exited)
		err := cmd.Start()
		started <- err
		if err == nil {
			cmd.Wait()
		}
	}()
}
