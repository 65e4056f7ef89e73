//go:build !linux

// Elsewhere than Linux a child cannot be tied to the test binary's life, so
// each test starts and stops its own stripe-mock.
package stripetest

import "os/exec"

const sharedMockSupported = false

func startForLife(cmd *exec.Cmd, started chan<- error, exited chan<- struct{}) {
	err := cmd.Start()
	started <- err
	go func() {
		if err == nil {
			cmd.Wait()
		}
		close(exited)
	}()
}
