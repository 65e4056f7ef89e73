// The servers' directories under os.TempDir(), and the removal of those
// whose test binary is gone.
package pgtest

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// dirPrefix names a server's directory: <os.TempDir()>/pgtest-*, holding
// data/ (the cluster and the unix socket), postgres.log and owner.
const dirPrefix = "pgtest-"

// makeDir makes a server's directory, records the test binary that owns
// it, and gives it to the server's account.
//
// It is not the test's t.TempDir(): the postgres user could not reach
// that, the unix socket's path would pass its length limit, and the shared
// server has no test to own it.
func makeDir(runAs *account) (string, error) {
	tmp, err := filepath.Abs(os.TempDir())
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(tmp, dirPrefix)
	if err != nil {
		return "", fmt.Errorf("making the server's directory: %v", err)
	}
	started, err := processStart(os.Getpid())
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "owner"), fmt.Appendf(nil, "%d %s\n", os.Getpid(), started), 0o644)
	}
	if err == nil && runAs != nil {
		err = os.Chown(dir, int(runAs.uid), int(runAs.gid))
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("preparing the server's directory %s: %v", dir, err)
	}
	return dir, nil
}

// sweep removes the directories of servers whose test binary has exited
// and whose reaper did not remove them (see reapAtExit). A directory
// without an owner file is another test binary's in the making, or, when
// old and empty, one that died before writing it.
func sweep() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		if _, err := strconv.ParseUint(strings.TrimPrefix(filepath.Base(dir), dirPrefix), 10, 64); err != nil {
			continue // not made by os.MkdirTemp(_, dirPrefix)
		}
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, "owner"))
		if err != nil {
			if time.Since(fi.ModTime()) > 10*time.Minute {
				os.Remove(dir) // only if empty
			}
			continue
		}
		fields := strings.Fields(string(b))
		if len(fields) != 2 {
			continue
		}
		pid, _ := strconv.Atoi(fields[0])
		if started, err := processStart(pid); err == nil && started == fields[1] {
			continue // the owner runs
		}
		killPostmaster(dir)
		os.RemoveAll(dir)
	}
}

// randomPassword is 130 random bits in base32, which needs no escaping in
// a URL or a pwfile.
func randomPassword() string { return rand.Text() }
