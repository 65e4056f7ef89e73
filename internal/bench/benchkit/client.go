// Package benchkit is the load generator shared by the benchmark programs
// under internal/bench: a lean HTTP/1.1 keep-alive client (one request at a
// time per connection, no allocation per request beyond the response
// parse), closed-loop and open-loop (fixed arrival rate) drivers, latency
// percentiles, and the helpers that run a driver in a child process so
// that the measured server and the load generator can be kept apart.
//
// It only ever talks to loopback addresses: Dial refuses anything else.
package benchkit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httputil"
	"strconv"
	"time"
)

// Response is what the client keeps of a response.
type Response struct {
	Status   int
	Location string
	BodyLen  int64
}

// Conn is one keep-alive HTTP/1.1 connection. Not safe for concurrent use.
type Conn struct {
	// Extra is sent as is after the request's own headers: whole lines,
	// each ending in CRLF.
	Extra string
	addr  string
	c     net.Conn
	br    *bufio.Reader
	bw    *bufio.Writer
}

// CheckLoopback refuses a host:port that is not a loopback IP address.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("benchkit: %s is not a loopback address; this load generator only targets loopback", addr)
	}
	return nil
}

// Dial connects to addr, which must be a loopback address.
func Dial(addr string) (*Conn, error) {
	if err := CheckLoopback(addr); err != nil {
		return nil, err
	}
	c := &Conn{addr: addr}
	return c, c.redial()
}

func (c *Conn) redial() error {
	if c.c != nil {
		_ = c.c.Close()
	}
	nc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		c.c = nil
		return err
	}
	c.c = nc
	if c.br == nil {
		c.br = bufio.NewReaderSize(nc, 16<<10)
		c.bw = bufio.NewWriterSize(nc, 4<<10)
	} else {
		c.br.Reset(nc)
		c.bw.Reset(nc)
	}
	return nil
}

// Close closes the connection.
func (c *Conn) Close() error {
	if c.c == nil {
		return nil
	}
	err := c.c.Close()
	c.c = nil
	return err
}

// GET sends a GET for path and reads the whole response. A connection
// that the server closed (or that broke) is dialled again for the next
// request; the failed request is reported as an error, not retried.
func (c *Conn) GET(host, path string, timeout time.Duration) (Response, error) {
	if c.c == nil {
		if err := c.redial(); err != nil {
			return Response{}, err
		}
	}
	if timeout > 0 {
		_ = c.c.SetDeadline(time.Now().Add(timeout))
	}
	c.bw.WriteString("GET ")
	c.bw.WriteString(path)
	c.bw.WriteString(" HTTP/1.1\r\nHost: ")
	c.bw.WriteString(host)
	c.bw.WriteString("\r\nUser-Agent: caddy-checkout-bench\r\nAccept: */*\r\n")
	c.bw.WriteString(c.Extra)
	c.bw.WriteString("\r\n")
	if err := c.bw.Flush(); err != nil {
		_ = c.Close()
		return Response{}, err
	}
	resp, keep, err := readResponse(c.br)
	if err != nil || !keep {
		_ = c.Close()
	}
	return resp, err
}

var (
	hdrContentLength    = []byte("content-length")
	hdrTransferEncoding = []byte("transfer-encoding")
	hdrLocation         = []byte("location")
	hdrConnection       = []byte("connection")
)

// readResponse parses one response from br and discards its body. keep is
// false when the connection cannot carry another request.
func readResponse(br *bufio.Reader) (resp Response, keep bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return resp, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return resp, false, fmt.Errorf("malformed status line %q", line)
	}
	resp.Status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return resp, false, fmt.Errorf("malformed status line %q", line)
	}
	keep = true
	contentLength := int64(-1)
	chunked := false
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return resp, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return resp, false, fmt.Errorf("malformed header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, hdrContentLength):
			contentLength, err = strconv.ParseInt(string(value), 10, 64)
			if err != nil {
				return resp, false, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, hdrTransferEncoding):
			chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case bytes.EqualFold(name, hdrLocation):
			resp.Location = string(value)
		case bytes.EqualFold(name, hdrConnection):
			if bytes.EqualFold(value, []byte("close")) {
				keep = false
			}
		}
	}
	switch {
	case resp.Status == 204 || resp.Status == 304 || resp.Status < 200:
	case chunked:
		resp.BodyLen, err = io.Copy(io.Discard, httputil.NewChunkedReader(br))
		if err != nil {
			return resp, false, err
		}
		// Trailers end with an empty line.
		for {
			line, err = br.ReadSlice('\n')
			if err != nil {
				return resp, false, err
			}
			if len(bytes.TrimRight(line, "\r\n")) == 0 {
				break
			}
		}
	case contentLength >= 0:
		n, err := br.Discard(int(contentLength))
		resp.BodyLen = int64(n)
		if err != nil {
			return resp, false, err
		}
	default:
		return resp, false, errors.New("response without length on a keep-alive connection")
	}
	return resp, keep, nil
}
