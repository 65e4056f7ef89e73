// Package xmpptest runs a real XMPP server for tests: Debian's Prosody,
// started on loopback in the test's temporary directory with a test CA,
// STARTTLS required and SCRAM logins (internal_hashed), so that the
// Voucher-Safe provider is tested against the server software merchants
// run. scripts/test.sh installs Prosody; a test that needs it fails under
// CI=true when it is missing and skips elsewhere.
package xmpptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Domain is the test server's XMPP domain (its virtual host).
const Domain = "vs.test"

// Server is a running Prosody.
type Server struct {
	Addr   string // host:port of its client (c2s) port
	CAFile string // PEM of the CA that signed its certificate
	CAs    *x509.CertPool

	t    testing.TB
	dir  string
	exe  string
	cfg  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logs bytes.Buffer
}

// Start starts Prosody for the test; it is stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	exe, err := exec.LookPath("prosody")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("prosody is not installed (scripts/test.sh installs Debian's prosody)")
		}
		t.Skip("prosody is not installed: install Debian's prosody (scripts/test.sh does) to run the XMPP tests")
	}
	s := &Server{t: t, dir: t.TempDir()}
	port := freePort(t)
	s.Addr = "127.0.0.1:" + strconv.Itoa(port)
	s.writeCerts()
	s.cfg = filepath.Join(s.dir, "prosody.cfg.lua")
	data := filepath.Join(s.dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`-- written by internal/xmpptest
run_as_root = true
daemonize = false
pidfile = %[1]q
data_path = %[2]q
interfaces = { "127.0.0.1" }
c2s_ports = { %[3]d }
s2s_ports = { }
http_ports = { }
https_ports = { }
c2s_require_encryption = true
allow_registration = false
authentication = "internal_hashed"
storage = "internal"
log = { { levels = { min = "info" }, to = "console" } }
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "presence"; "message"; "iq"; "posix" }
modules_disabled = { "s2s"; "http"; "admin_telnet"; "offline" }
certificates = %[4]q
ssl = { certificate = %[5]q; key = %[6]q }
VirtualHost %[7]q
`, filepath.Join(s.dir, "prosody.pid"), data, port, filepath.Join(s.dir, "certs"),
		filepath.Join(s.dir, "certs", Domain+".crt"), filepath.Join(s.dir, "certs", Domain+".key"), Domain)
	if err := os.WriteFile(s.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.exe = exe
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// start runs prosody and waits until its port answers.
func (s *Server) start() {
	s.t.Helper()
	cmd := exec.Command(s.exe, "--config", s.cfg, "-F")
	s.mu.Lock()
	s.logs.Reset()
	cmd.Stdout, cmd.Stderr = &lockedBuf{s}, &lockedBuf{s}
	s.mu.Unlock()
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting prosody: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			s.t.Fatalf("prosody exited at start:\n%s", s.Logs())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("prosody did not listen on %s within 20 s:\n%s", s.Addr, s.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type lockedBuf struct{ s *Server }

func (b *lockedBuf) Write(p []byte) (int, error) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	return b.s.logs.Write(p)
}

// Logs is what prosody printed since it last started.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// Stop stops prosody and waits for it to exit.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// Restart stops prosody and starts it again on the same port, as an
// operator's restart or a crash and recovery does; accounts are kept.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Register makes an account user@Domain with password.
func (s *Server) Register(user, password string) string {
	s.t.Helper()
	ctl, err := exec.LookPath("prosodyctl")
	if err != nil {
		s.t.Fatal("prosodyctl is not installed")
	}
	out, err := exec.Command(ctl, "--config", s.cfg, "register", user, Domain, password).CombinedOutput()
	if err != nil {
		s.t.Fatalf("prosodyctl register %s: %v\n%s", user, err, out)
	}
	return user + "@" + Domain
}

// TLSConfig is a client TLS config that trusts the test CA.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{ServerName: Domain, RootCAs: s.CAs, MinVersion: tls.VersionTLS12}
}

// writeCerts makes a CA and a certificate for Domain signed by it.
func (s *Server) writeCerts() {
	t := s.t
	dir := filepath.Join(s.dir, "certs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "xmpptest CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: Domain},
		DNSNames: []string{Domain}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	write := func(name, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(Domain+".crt", "CERTIFICATE", der)
	write(Domain+".key", "EC PRIVATE KEY", keyDER)
	s.CAFile = filepath.Join(s.dir, "ca.pem")
	if err := os.WriteFile(s.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	s.CAs = x509.NewCertPool()
	s.CAs.AddCert(ca)
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
