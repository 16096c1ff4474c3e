package notify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/dirsync/dirsync/daemon/config"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/internal/testenv"
)

// mailSink is a real SMTP server in the test process (emersion/go-smtp):
// STARTTLS with its own certificate, AUTH PLAIN only after TLS, and a
// temporary failure (451) while down.
type mailSink struct {
	addr   string
	caFile string
	down   atomic.Bool
	mu     sync.Mutex
	mails  []string
	auths  []string
}

type sinkSession struct {
	s      *mailSink
	authed bool
}

func (ss *sinkSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (ss *sinkSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		ss.s.mu.Lock()
		ss.s.auths = append(ss.s.auths, user+":"+pass)
		ss.s.mu.Unlock()
		if user != "dirsync" || pass != "mail-password-42" {
			return errors.New("bad credentials")
		}
		ss.authed = true
		return nil
	}), nil
}
func (ss *sinkSession) Mail(string, *smtp.MailOptions) error {
	if !ss.authed {
		return &smtp.SMTPError{Code: 530, Message: "authentication required"}
	}
	return nil
}
func (ss *sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if ss.s.down.Load() {
		return &smtp.SMTPError{Code: 451, Message: "try again later"}
	}
	ss.s.mu.Lock()
	ss.s.mails = append(ss.s.mails, string(b))
	ss.s.mu.Unlock()
	return nil
}
func (ss *sinkSession) Reset()        {}
func (ss *sinkSession) Logout() error { return nil }

func startMailSink(t *testing.T, withTLS bool) *mailSink {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	m := &mailSink{caFile: filepath.Join(t.TempDir(), "ca.pem")}
	if err := os.WriteFile(m.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: m}, nil }))
	srv.Domain = "127.0.0.1"
	if withTLS {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return m
}

func (m *mailSink) received() ([]string, []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.mails...), append([]string(nil), m.auths...)
}

func emailFixture(t *testing.T, sink *mailSink) *fixture {
	t.Helper()
	f := newFixture(t, "http://127.0.0.1:1/unused", config.NotifyJobFailed)
	auth := filepath.Join(t.TempDir(), "auth")
	if err := os.WriteFile(auth, []byte("dirsync:mail-password-42\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.opts.Webhooks = nil
	f.opts.Emails = []config.Email{{Name: "ops", SMTP: sink.addr, From: "dirsync@example.com", To: []string{"ops@example.com"},
		AuthFile: auth, CAFile: sink.caFile, Events: []string{config.NotifyJobFailed, config.NotifyGuardTripped}}}
	return f
}

// TestEmailThroughAnOutage: a failed job is mailed over STARTTLS with
// AUTH, after the server's temporary failures, once, saying what failed
// and what to do; a completed job is not mailed.
func TestEmailThroughAnOutage(t *testing.T) {
	sink := startMailSink(t, true)
	sink.down.Store(true)
	f := emailFixture(t, sink)
	n := f.start()
	failed := syncState("j9", events.StateFailed, "the client secret was rejected: set client_secret to the secret's Value")
	f.append(syncState("j8", events.StateCompleted, ""), failed)
	testenv.Eventually(t, time.Minute, func() error {
		if st := n.Status(context.Background())[0]; st.Failed < 2 || !strings.Contains(st.LastError, "451") {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	sink.down.Store(false)
	testenv.Eventually(t, time.Minute, func() error {
		if st := n.Status(context.Background())[0]; st.Delivered != 1 || st.Pending != 0 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	mails, auths := sink.received()
	if len(mails) != 1 {
		t.Fatalf("%d mails; want the failed job's", len(mails))
	}
	for _, want := range []string{"Subject: [dirsync] demo: sync job FAILED", "Message-ID: <" + failed.ID + "@dirsync>", "From: dirsync <dirsync@example.com>",
		"To: ops@example.com", "the client secret was rejected: set client_secret to the secret's Value", "dirsync jobs show j9"} {
		if !strings.Contains(mails[0], want) {
			t.Errorf("the mail lacks %q:\n%s", want, mails[0])
		}
	}
	for _, a := range auths {
		if a != "dirsync:mail-password-42" {
			t.Errorf("AUTH with %q", a)
		}
	}
}

// TestEmailNeedsSTARTTLS: a server without STARTTLS never gets the
// password or the message; the status says why.
func TestEmailNeedsSTARTTLS(t *testing.T) {
	sink := startMailSink(t, false)
	f := emailFixture(t, sink)
	n := f.start()
	f.append(syncState("j9", events.StateFailed, "boom"))
	testenv.Eventually(t, time.Minute, func() error {
		if st := n.Status(context.Background())[0]; st.Failed < 1 || !strings.Contains(st.LastError, "does not offer STARTTLS") {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	if mails, auths := sink.received(); len(mails)+len(auths) != 0 {
		t.Errorf("without TLS the server got %d mails and %d AUTH attempts", len(mails), len(auths))
	}
	for _, e := range f.logs.All() {
		if strings.Contains(fmt.Sprint(e.Message, e.ContextMap()), "mail-password-42") {
			t.Errorf("the password is logged: %s %v", e.Message, e.ContextMap())
		}
	}
}
