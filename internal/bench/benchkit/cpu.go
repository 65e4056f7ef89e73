package benchkit

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUMark is a reading of the machine's and this process's CPU use, to
// tell how much of the machine something else used during a measurement
// (on a shared 2-core machine a build next door changes every figure).
type CPUMark struct {
	at      time.Time
	busy    float64 // machine-wide busy CPU seconds since boot (/proc/stat)
	ours    float64 // this process and its waited-for children, CPU seconds
	self    float64 // this process alone
	haveSys bool
}

// MarkCPU reads the counters now.
func MarkCPU() CPUMark {
	m := CPUMark{at: time.Now()}
	m.busy, m.haveSys = machineBusy()
	var self, kids syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	m.self = tv(self.Utime) + tv(self.Stime)
	m.ours = m.self + tv(kids.Utime) + tv(kids.Stime)
	return m
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// Usage is CPU use between two marks, in cores (1.0 = one core busy for the
// whole interval).
type Usage struct {
	Seconds float64 `json:"seconds"`       // wall time between the marks
	Ours    float64 `json:"ours_cores"`    // this process and its children
	Self    float64 `json:"self_cores"`    // this process alone
	Foreign float64 `json:"foreign_cores"` // everything else on the machine
}

// Since is the CPU used from m to now. Children count once they have
// been waited for.
func (m CPUMark) Since() Usage {
	n := MarkCPU()
	wall := n.at.Sub(m.at).Seconds()
	if wall <= 0 || !m.haveSys || !n.haveSys {
		return Usage{}
	}
	ours := (n.ours - m.ours) / wall
	foreign := (n.busy-m.busy)/wall - ours
	return Usage{Seconds: wall, Ours: ours, Self: (n.self - m.self) / wall, Foreign: max(foreign, 0)}
}

// machineBusy sums the non-idle fields of /proc/stat's cpu line, in
// seconds (USER_HZ is 100 on Linux).
func machineBusy() (float64, bool) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, false
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 8 || fields[0] != "cpu" {
		return 0, false
	}
	var busy float64
	for i, v := range fields[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest, guest_nice are already in user/nice
			break
		}
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, false
		}
		busy += n
	}
	return busy / 100, true
}

// WaitQuiet waits, at most max, until other processes use less than
// cores of CPU over a 250 ms window, and says how long it waited.
func WaitQuiet(cores float64, max time.Duration) time.Duration {
	start := time.Now()
	for time.Since(start) < max {
		m := MarkCPU()
		time.Sleep(250 * time.Millisecond)
		if m.Since().Foreign < cores {
			break
		}
	}
	return time.Since(start)
}
