//go:build !linux

// Elsewhere than Linux the server cannot be tied to the test binary's life
// (nor found where Debian installs it), so pgtest skips.
package pgtest

import (
	"errors"
	"os"
	"os/exec"
)

const supported = false

func startForLife(cmd *exec.Cmd, runAs *account) (<-chan struct{}, error) {
	return nil, errors.New("pgtest runs PostgreSQL on Linux only")
}

func processStart(pid int) (string, error) {
	return "", errors.New("pgtest runs PostgreSQL on Linux only")
}

func killPostmaster(dir string) {}

func reapAtExit(dir string) (*os.File, error) {
	return nil, errors.New("pgtest runs PostgreSQL on Linux only")
}
