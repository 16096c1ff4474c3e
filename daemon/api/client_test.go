package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/csv"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dirsync/dirsync/events"
)

func TestHTTPClient(t *testing.T) {
	s, m := newTestServer(t)
	want := fill(m, 250)
	m.putGroup("demo", events.Group{ID: "g1", DisplayName: "Sales"}, "u00001")
	s.WithReadiness(func(context.Context) error { return errors.New("replaying events") })
	srv := httptest.NewTLSServer(s.Authenticated(func() []byte { return []byte("tok") }))
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	tlsConfig := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	ctx := context.Background()

	c := NewHTTPClient(srv.URL+"/", "tok", tlsConfig)
	c.pageSize = 7
	got, err := c.Recipients(ctx, RecipientFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range got {
		ids = append(ids, r.ID)
	}
	if !slices.Equal(ids, want) {
		t.Errorf("Recipients followed the pages to %d recipients, want the %d in order", len(ids), len(want))
	}
	if got, err := c.Recipients(ctx, RecipientFilter{Tag: "none"}); err != nil || got == nil || len(got) != 0 {
		t.Errorf("no match: %v, %v", got, err)
	}
	if r, err := c.Recipient(ctx, want[0]); err != nil || r.ID != want[0] {
		t.Errorf("Recipient: %+v, %v", r, err)
	}
	if _, err := c.Recipient(ctx, "demo.nobody"); err == nil || !strings.Contains(err.Error(), "demo.nobody") {
		t.Errorf("absent recipient: %v", err)
	}
	var buf bytes.Buffer
	if err := c.Export(ctx, FormatCSV, RecipientFilter{Connector: "demo"}, &buf); err != nil {
		t.Fatal(err)
	}
	if rows, err := csv.NewReader(&buf).ReadAll(); err != nil || len(rows) != 1+250-84 {
		t.Errorf("export: %d rows, %v", len(rows), err)
	}
	if err := c.Export(ctx, "xml", RecipientFilter{}, &buf); err == nil || !strings.Contains(err.Error(), "format") {
		t.Errorf("bad format: %v", err)
	}
	if gs, err := c.Groups(ctx, ""); err != nil || len(gs) != 1 {
		t.Errorf("Groups: %v, %v", gs, err)
	}
	if g, err := c.Group(ctx, "demo.g1"); err != nil || len(g.MemberList) != 1 || g.MemberList[0].RecipientID != "demo.u00001" {
		t.Errorf("Group: %+v, %v", g, err)
	}
	if err := c.Ready(ctx); err == nil || err.Error() != "replaying events" {
		t.Errorf("Ready: %v", err)
	}

	for _, tok := range []string{"", "wrong"} {
		c := NewHTTPClient(srv.URL, tok, tlsConfig)
		if _, err := c.Status(ctx); err == nil || !strings.Contains(err.Error(), "token") || (tok != "" && strings.Contains(err.Error(), tok)) {
			t.Errorf("token %q: %v", tok, err)
		}
	}
	if _, err := NewHTTPClient(srv.URL, "tok", nil).Status(ctx); err == nil {
		t.Error("an untrusted certificate was accepted")
	}
}

func TestHTTPClientDaemonDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	_, err = NewHTTPClient("http://"+addr, "tok", nil).Status(context.Background())
	if !errors.Is(err, ErrDaemonDown) {
		t.Errorf("err = %v, want ErrDaemonDown", err)
	}
}

func TestUnixClient(t *testing.T) {
	s, m := newTestServer(t)
	m.putRecipient(events.Recipient{Connector: "demo", ObjectID: "x", Email: "x@x.com"})
	dir, err := os.MkdirTemp("", "dsapi") // short: socket paths are limited to ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "d.sock")
	ctx := context.Background()
	if _, err := NewClient(sock).Status(ctx); !errors.Is(err, ErrDaemonDown) {
		t.Errorf("no daemon: %v", err)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var requestedBy string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Error("the unix client sent a token")
		}
		requestedBy = r.Header.Get("X-Dirsync-Requested-By")
		s.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	c := NewClient(sock)
	st, err := c.Status(ctx)
	if err != nil || len(st.Connectors) != 1 {
		t.Fatalf("Status: %+v, %v", st, err)
	}
	if requestedBy != "cli" {
		t.Errorf("X-Dirsync-Requested-By %q", requestedBy)
	}
	if rs, err := c.Recipients(ctx, RecipientFilter{Status: events.RecipientActive}); err != nil || len(rs) != 1 {
		t.Errorf("Recipients: %v, %v", rs, err)
	}
}

// A daemon that takes a request and dies before answering: the error says
// so and what to check, not a bare EOF.
func TestClientDaemonDiesMidRequest(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			_, _ = c.Read(buf) // take the request, then die without a word
			_ = c.Close()
		}
	}()
	_, err = NewHTTPClient("http://"+l.Addr().String(), "tok", nil).Sync(context.Background(), "demo", SyncRequest{})
	if err == nil || !strings.Contains(err.Error(), "closed the connection before answering POST /v1/connectors/demo/sync") ||
		!strings.Contains(err.Error(), "dirsync jobs") {
		t.Errorf("err = %v; want it to say the daemon closed the connection and how to check", err)
	}
}
