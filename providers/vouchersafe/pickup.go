// The pickup: the Voucher-Safe CLI is run against the merchant safe to take
// out the payment whose baggage names the attempt, and what it prints is
// read. The seed's PHP read only the last line of the output (exec()); so
// do we: "NOT FOUND", a JSON object describing the payment, or an error.
package vouchersafe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Placeholders of pickup_command.
const (
	placeholderKey   = "{key}"
	placeholderValue = "{value}"
)

// BaggageKey is the baggage field that carries our attempt reference.
const BaggageKey = "orderId"

// Pickup runs pickup_command. It never goes through a shell: the command
// is a list of arguments, and {key} and {value} are replaced inside them.
type Pickup struct {
	Args    []string
	Timeout time.Duration
	lane    *lane
	safe    string
	// Exclusive, when set, keeps pickups of one safe one at a time across
	// the instances sharing the store too (provider.Env.Exclusive).
	Exclusive func(ctx context.Context, name string, ttl time.Duration, fn func() error) error
}

// NewPickup is the pickup of a merchant safe: pickups of one safe run one
// at a time in this process, whichever site asks.
func NewPickup(args []string, timeout time.Duration, safe string) (*Pickup, error) {
	if err := CheckCommand(args); err != nil {
		return nil, err
	}
	if timeout <= 0 {
		return nil, errors.New("pickup_timeout: want a positive duration, such as 90s")
	}
	return &Pickup{Args: args, Timeout: timeout, lane: laneFor(safe), safe: strings.ToLower(safe)}, nil
}

// CheckCommand checks a pickup_command's arguments.
func CheckCommand(args []string) error {
	if len(args) == 0 {
		return errors.New("pickup_command: want the command that picks up a payment, such as java -jar voucher-cli.jar -w -b {key}:{value}")
	}
	for _, a := range args {
		if strings.Contains(a, placeholderValue) {
			return nil
		}
	}
	return errors.New("pickup_command: no {value} in it; the command must be told which payment to pick up (-b {key}:{value})")
}

// command is the pickup's argument list for one attempt.
func (p *Pickup) command(value string) []string {
	out := make([]string, len(p.Args))
	for i, a := range p.Args {
		a = strings.ReplaceAll(a, placeholderKey, BaggageKey)
		out[i] = strings.ReplaceAll(a, placeholderValue, value)
	}
	return out
}

// Errors of a pickup that ran into limits.
var (
	// ErrBusy: too many pickups are waiting for the safe; try later.
	ErrBusy = errors.New("too many payment checks are waiting for the merchant safe")
	// ErrTimeout: the pickup did not finish within pickup_timeout.
	ErrTimeout = errors.New("the payment check did not finish in time")
)

// lane runs one pickup at a time for a merchant safe: the CLI locks the
// safe's login (a second one waits up to 30 s, then fails). Waiting is
// bounded.
type lane struct {
	run     chan struct{} // holds one token while a pickup runs
	mu      sync.Mutex
	waiting int
}

// maxWaiting bounds the pickups queued for one safe.
const maxWaiting = 16

var (
	lanesMu sync.Mutex
	lanes   = map[string]*lane{}
)

// laneFor is the lane of a merchant safe, shared by every site of the
// process that receives into it.
func laneFor(safe string) *lane {
	lanesMu.Lock()
	defer lanesMu.Unlock()
	safe = strings.ToLower(safe) // one safe, however it is written
	l := lanes[safe]
	if l == nil {
		l = &lane{run: make(chan struct{}, 1)}
		lanes[safe] = l
	}
	return l
}

// Output is what a pickup printed, and how it ended.
type Output struct {
	Line   string // the last non-empty line of stdout
	Stdout string // all of it, kept for the operator (bounded)
	Exit   int    // exit status; -1 when it did not run or was killed
}

// maxOutput bounds what is kept of a pickup's output.
const maxOutput = 64 << 10

// Run runs the pickup for an attempt reference, after the pickups already
// running or waiting for the same safe.
func (p *Pickup) Run(ctx context.Context, value string) (Output, error) {
	l := p.lane
	if l == nil {
		l = &lane{run: make(chan struct{}, 1)}
	}
	l.mu.Lock()
	if l.waiting >= maxWaiting {
		l.mu.Unlock()
		return Output{Exit: -1}, ErrBusy
	}
	l.waiting++
	l.mu.Unlock()
	defer func() { l.mu.Lock(); l.waiting--; l.mu.Unlock() }()
	select {
	case l.run <- struct{}{}:
		defer func() { <-l.run }()
	case <-ctx.Done():
		return Output{Exit: -1}, fmt.Errorf("%w: still waiting for the merchant safe", ErrBusy)
	}
	if p.Exclusive == nil {
		return p.run(ctx, value)
	}
	var (
		out Output
		ran bool
	)
	// Held a little longer than the pickup may take, so an instance that
	// dies mid-pickup frees the safe soon after its pickup would have
	// been killed anyway.
	err := p.Exclusive(ctx, "vouchersafe/pickup/"+p.safe, p.Timeout+10*time.Second, func() error {
		ran = true
		var err error
		out, err = p.run(ctx, value)
		return err
	})
	switch {
	case ran:
		return out, err
	case ctx.Err() != nil:
		return Output{Exit: -1}, fmt.Errorf("%w: still waiting for the merchant safe (another instance's pickup)", ErrBusy)
	default:
		return Output{Exit: -1}, fmt.Errorf("taking the merchant safe: %w", err)
	}
}

// run runs the command once the safe is this pickup's.
func (p *Pickup) run(ctx context.Context, value string) (Output, error) {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	args := p.command(value)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr limited
	stdout.max, stderr.max = maxOutput, 4<<10
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := Output{Stdout: stdout.String(), Line: lastLine(stdout.String()), Exit: -1}
	if cmd.ProcessState != nil {
		out.Exit = cmd.ProcessState.ExitCode()
	}
	if ctx.Err() == context.DeadlineExceeded {
		return out, fmt.Errorf("%w (%s)", ErrTimeout, p.Timeout)
	}
	if err != nil {
		return out, fmt.Errorf("pickup command %s: %v; stderr: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\r\n \t"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return l
		}
	}
	return ""
}

// limited keeps the first max bytes written to it.
type limited struct {
	bytes.Buffer
	max int
}

func (l *limited) Write(p []byte) (int, error) {
	if room := l.max - l.Len(); room > 0 {
		l.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Payment is a payment the pickup took out of the safe.
type Payment struct {
	Payer   string            // the customer's safe, such as joecustomer-2345@vouchi.com
	Amount  string            // as printed: 21.24
	Units   string            // USV, CAD, ...
	Asset   string            // the voucher's asset
	Issuer  string            // VI-USV
	Baggage map[string]string // the other fields: orderId and up to two more
}

// ErrNotFound is the CLI's "NOT FOUND": no such payment in the safe yet.
var ErrNotFound = errors.New("payment not found in the merchant safe")

// ParseLine reads the last line of a pickup's output.
func ParseLine(line string) (Payment, error) {
	if line == "NOT FOUND" {
		return Payment{}, ErrNotFound
	}
	fields, err := strictObject(line)
	if err != nil || len(fields) == 0 {
		return Payment{}, fmt.Errorf("the pickup printed neither NOT FOUND nor a payment: %q", truncate(line, 200))
	}
	p := Payment{Baggage: map[string]string{}}
	for k, v := range fields {
		s, ok := scalar(v)
		if !ok {
			return Payment{}, fmt.Errorf("the pickup's payment has a field %q that is not a string or a number", truncate(k, 40))
		}
		switch k {
		case "PAYER":
			p.Payer = s
		case "AMOUNT":
			p.Amount = s
		case "UNITS":
			p.Units = s
		case "ASSET":
			p.Asset = s
		case "ISSUER":
			p.Issuer = s
		default:
			if reserved[strings.ToUpper(k)] {
				// Baggage is the payer's: a pair named like a field (the
				// seed's format puts both at the top level) must not pass
				// for it.
				return Payment{}, fmt.Errorf("the pickup's payment has a baggage field %q named like one of its own", truncate(k, 40))
			}
			p.Baggage[k] = s
		}
	}
	if p.Payer == "" || p.Amount == "" || p.Units == "" || p.Issuer == "" {
		return Payment{}, fmt.Errorf("the pickup's payment lacks PAYER, AMOUNT, UNITS or ISSUER: %q", truncate(line, 200))
	}
	return p, nil
}

// reserved are the payment's own fields.
var reserved = map[string]bool{"PAYER": true, "AMOUNT": true, "UNITS": true, "ASSET": true, "ISSUER": true}

// strictObject reads one JSON object of scalars and refuses a key given
// twice (encoding/json would keep the last one, which an altered client
// could use to replace AMOUNT or ISSUER).
func strictObject(line string) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	out := map[string]any{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("not a JSON object")
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("field %q given twice", key)
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out[key] = v
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errors.New("not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("more after the JSON object")
	}
	return out, nil
}

func scalar(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	}
	return "", false
}

func truncate(s string, n int) string {
	// Shown in messages and logs, often quoted (%q): bytes that are not
	// UTF-8 and characters that are not printable would be written out as
	// escapes up to four times their size, so they are shown as � and ?.
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
