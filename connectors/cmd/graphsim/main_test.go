package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dirsync/dirsync/connectors/graphsim"
	"github.com/dirsync/dirsync/internal/testenv"
)

var urlRE = regexp.MustCompile(`at (https://127\.0\.0\.1:\d+) `)

// server runs `graphsim` (the server) in the test and returns its URL and
// the flags the subcommands need.
func server(t *testing.T, extra ...string) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	secret, ca := filepath.Join(dir, "secret"), filepath.Join(dir, "ca.pem")
	ctx, cancel := context.WithCancel(context.Background())
	var out testenv.LockedBuffer
	done := make(chan error, 1)
	args := append([]string{"-listen", "127.0.0.1:0", "-users", "60", "-groups", "6", "-seed", "1",
		"-client-secret-file", secret, "-ca-file", ca}, extra...)
	go func() { done <- run(ctx, args, &out, &out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	var base string
	testenv.Eventually(t, 60*time.Second, func() error {
		select {
		case err := <-done:
			t.Fatalf("server ended: %v\n%s", err, out.String())
		default:
		}
		m := urlRE.FindStringSubmatch(out.String())
		if m == nil {
			return fmt.Errorf("server did not start:\n%s", out.String())
		}
		base = m[1]
		return nil
	})
	return base, []string{"-url", base, "-ca-file", ca, "-client-secret-file", secret}
}

// sub runs a subcommand and returns its output.
func sub(t *testing.T, conn []string, name string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	all := append([]string{name}, args...)
	// Connection flags go before the positional arguments.
	if name == "user" || name == "members" {
		all = append([]string{name, args[0]}, append(slices.Clone(conn), args[1:]...)...)
	} else {
		all = append(all, conn...)
	}
	err := run(context.Background(), all, &out, &errOut)
	return out.String() + errOut.String(), err
}

// sameTenant is the tenant the test server generates (generation is
// deterministic).
func sameTenant(t *testing.T) *graphsim.Tenant {
	s, err := graphsim.New(graphsim.Config{Users: 60, Groups: 6, Seed: 1, ClientSecret: "x"})
	if err != nil {
		t.Fatal(err)
	}
	return s.Tenant()
}

func TestSubcommands(t *testing.T) {
	base, conn := server(t, "-throttle-rate", "0.5", "-retry-after", "0.5", "-fault-seed", "2", "-token-lifetime", "10m")
	tn := sameTenant(t)
	u0, u1 := tn.Users[0].ID, tn.Users[1].ID
	g := tn.Groups[1]
	var outsider string
	for _, u := range tn.Users[2:] {
		if !slices.ContainsFunc(g.Members, func(m graphsim.Member) bool { return m.ID == u.ID }) {
			outsider = u.ID
			break
		}
	}

	steps := []struct {
		name string
		args []string
		want []string // substrings of the output
		fail bool
	}{
		{"faults from flags", []string{"faults"}, []string{`"throttleRate": 0.5`, `"retryAfter": "0.5"`, `"seed": 2`}, false},
		{"set faults", []string{"faults", "-server-error-rate", "0.1", "-latency", "5ms"}, []string{`"serverErrorRate": 0.1`, `"throttleRate": 0`, `"latency": "5ms"`}, false},
		{"settings", []string{"faults", "-token-lifetime", "30s", "-delta-token-ttl", "1h"}, []string{`"tokenLifetime": "30s"`, `"deltaTokenTTL": "1h0m0s"`}, false},
		{"clear faults", []string{"faults", "-clear"}, []string{`"serverErrorRate": 0`, `"latency": "0s"`}, false},
		{"bad faults", []string{"faults", "-throttle-rate", "3"}, []string{"between 0 and 1"}, true},
		{"disable", []string{"user", "disable", u0}, []string{"disable user " + u0 + ": done"}, false},
		{"soft delete", []string{"user", "delete", u1}, nil, false},
		{"restore", []string{"user", "restore", u1}, nil, false},
		{"restore again", []string{"user", "restore", u1}, []string{"is not deleted"}, true},
		{"licenses", []string{"user", "licenses", "-sku", "f30db892-07e9-47e9-837c-80727f46fd3d", u1}, nil, false},
		{"members add", []string{"members", "add", g.ID, outsider}, []string{"add 1 members"}, false},
		{"members remove", []string{"members", "remove", g.ID, outsider}, nil, false},
		{"churn", []string{"churn", "-n", "7", "-seed", "3"}, []string{"7 changes (seed 3), tenant version"}, false},
		{"churn json", []string{"churn", "-n", "2", "-seed", "4", "-json"}, []string{`"changes"`}, false},
		{"expire", []string{"expire-delta", "-mode", "gone-empty"}, []string{"gone-empty"}, false},
		{"bad mode", []string{"expire-delta", "-mode", "later"}, []string{"unknown delta token expiry mode"}, true},
		{"status", []string{"status"}, []string{`"users": `, `"version": `}, false},
		{"counters", []string{"counters", "-reset"}, []string{"Graph requests"}, false},
	}
	for _, st := range steps {
		out, err := sub(t, conn, st.args[0], st.args[1:]...)
		if (err != nil) != st.fail {
			t.Errorf("%s: err %v\n%s", st.name, err, out)
			continue
		}
		text := out
		if err != nil {
			text += err.Error()
		}
		for _, w := range st.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: output lacks %q:\n%s", st.name, w, text)
			}
		}
	}
	if lines := strings.Count(mustSub(t, conn, "churn", "-n", "4", "-seed", "9"), "\n"); lines != 5 {
		t.Errorf("churn printed %d lines", lines)
	}

	// A wrong secret is refused.
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("not-the-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badConn := slices.Clone(conn)
	badConn[5] = bad
	if _, err := sub(t, badConn, "churn", "-n", "1"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong secret: %v", err)
	}
	if _, err := sub(t, conn[2:], "status"); err == nil {
		t.Error("no -url: the default port answered")
	}
	_ = base
}

func mustSub(t *testing.T, conn []string, name string, args ...string) string {
	t.Helper()
	out, err := sub(t, conn, name, args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
	return out
}

// The server flags reach the Sim: a token from the server expires as
// -token-lifetime says and Graph is throttled as -throttle-rate says.
func TestServerFlags(t *testing.T) {
	base, conn := server(t, "-throttle-rate", "1", "-retry-after", "none", "-token-lifetime", "45s", "-delta-members-per-page", "10")
	ca, err := os.ReadFile(conn[3])
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := os.ReadFile(conn[5])
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	tn := sameTenant(t)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {graphsim.DefaultClientID},
		"client_secret": {strings.TrimSpace(string(secret))}, "scope": {"https://graph.microsoft.com/.default"}}
	resp, err := c.PostForm(base+"/"+tn.ID+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if tok.ExpiresIn != 45 {
		t.Errorf("expires_in %d", tok.ExpiresIn)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/v1.0/users/delta", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || len(resp.Header.Values("Retry-After")) != 0 {
		t.Errorf("%s, Retry-After %v", resp.Status, resp.Header.Values("Retry-After"))
	}
	out := mustSub(t, conn, "counters")
	if !strings.Contains(out, "GET /v1.0/users/delta 429") || !strings.Contains(out, "POST /token 200") {
		t.Errorf("counters:\n%s", out)
	}
}

// The built binary serves, and its churn subcommand changes the running
// server.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "graphsim")
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	secret, ca := filepath.Join(dir, "secret"), filepath.Join(dir, "ca.pem")
	srv := exec.Command(bin, "-listen", "127.0.0.1:0", "-users", "40", "-groups", "4", "-client-secret-file", secret, "-ca-file", ca)
	var out testenv.LockedBuffer
	srv.Stdout, srv.Stderr = &out, &out
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Signal(os.Interrupt)
		_ = srv.Wait()
	})
	var base string
	testenv.Eventually(t, 60*time.Second, func() error {
		m := urlRE.FindStringSubmatch(out.String())
		if m == nil {
			return fmt.Errorf("server did not start:\n%s", out.String())
		}
		base = m[1]
		return nil
	})
	churn, err := exec.Command(bin, "churn", "-n", "3", "-seed", "1", "-url", base, "-ca-file", ca, "-client-secret-file", secret).CombinedOutput()
	if err != nil || !strings.Contains(string(churn), "3 changes (seed 1), tenant version 1") {
		t.Errorf("churn: %v\n%s", err, churn)
	}
}
