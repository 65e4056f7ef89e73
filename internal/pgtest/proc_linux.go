// Tying the server's life to the test binary's, on Linux.
package pgtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

const supported = true

// startForLife starts cmd, as runAs unless it is nil, so that the kernel
// kills it when the test binary exits, however it exits; exited is closed
// once it has exited and been waited for. The postmaster's sessions notice
// its death and exit by themselves.
//
// Pdeathsig fires when the thread that forked the child ends, not the
// process, so the fork happens on a goroutine locked to its thread, which
// then waits for the child and never unlocks: the thread lives as long as
// the child does. The credentials are set before Pdeathsig in the child
// (changing them would clear it), and not through su or runuser, whose
// death would not be the server's.
func startForLife(cmd *exec.Cmd, runAs *account) (exited <-chan struct{}, err error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if runAs != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: runAs.uid, Gid: runAs.gid}
	}
	started := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer close(done)
		err := cmd.Start()
		started <- err
		if err == nil {
			cmd.Wait()
		}
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}

// processStart is when process pid started, in clock ticks since boot
// (field 22 of /proc/<pid>/stat): with the pid, it names a process even
// after the pid is reused.
func processStart(pid int) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(fields) < 20 {
		return "", fmt.Errorf("/proc/%d/stat is too short", pid)
	}
	return fields[19], nil
}

// killPostmaster kills a postmaster still running in dir, which only
// happens if the kernel failed to kill it with its test binary. It must
// be that server: its command line names dir.
func killPostmaster(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil || pid <= 1 {
		return
	}
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil &&
		bytes.Contains(cmdline, []byte(filepath.Join(dir, "data"))) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// reapAtExit starts a process that removes dir once the test binary has
// exited, however it exits: a shell blocked reading a pipe whose only
// write end, returned, is this process's. The kernel kills a shared server
// with its test binary, leaving no test to remove its data; this does,
// after giving the server's sessions a second to exit. The shell has its
// own process group, so a Ctrl-C at the terminal does not stop it, and no
// stdout or stderr, so go test does not wait for it.
func reapAtExit(dir string) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cmd := exec.Command("/bin/sh", "-c",
		`read _; for try in 1 2 3 4 5; do sleep 1; rm -rf -- "$1" 2>/dev/null; [ -e "$1" ] || exit 0; done`,
		"pgtest-reaper", dir)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("starting the reaper of %s: %v", dir, err)
	}
	go cmd.Wait()
	return w, nil
}
