package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/dirsync/dirsync/daemon/api"

	"github.com/dirsync/dirsync/internal/testenv"
)

// runRefused runs dirsyncd on the fixture's config, expecting it to exit
// on its own, and returns its exit code and output.
func runRefused(t *testing.T, f *fixture) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(f.bin, "dirsyncd"), "--config", f.config, "--log-format", "console")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("dirsyncd did not exit with an error by itself: %v\n%s", err, out)
	}
	return ee.ExitCode(), string(out)
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

// Each file the daemon keeps or reads a secret from, open to other users,
// stops the daemon before it opens its store: exit code not 0, and the
// output names the file, its mode and the command that fixes it.
func TestAccessRefusedAtStart(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		api  bool
		// setup makes the file loose and returns its path.
		setup func(t *testing.T, f *fixture) string
		code  int
		fix   string // the command, %s standing for the path
	}{
		{name: "data directory 0755", code: 1, fix: "chmod 700 %s", setup: func(t *testing.T, f *fixture) string {
			p := filepath.Join(f.dir, "data")
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			chmod(t, p, 0o755)
			return p
		}},
		{name: "nkey seed 0644", code: 1, fix: "chmod 600 %s", setup: func(t *testing.T, f *fixture) string {
			if err := os.Mkdir(filepath.Join(f.dir, "data"), 0o700); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(f.dir, "data", "nats-user.nk")
			write(t, p, string(seed)+"\n", 0o644)
			chmod(t, p, 0o644)
			return p
		}},
		// The daemon checks client_secret_file when it checks each
		// connector against its plugin, at start (exit 2, a configuration
		// error with the connector's place in plugins.hcl), and again
		// before each job (TestAccessSecretFileAtSync).
		{name: "client_secret_file 0644", code: 2, fix: "chmod 600 %s", setup: func(t *testing.T, f *fixture) string {
			p := filepath.Join(f.dir, "secret")
			chmod(t, p, 0o644)
			return p
		}},
		{name: "api token_file 0640", api: true, code: 1, fix: "chmod 600 %s", setup: func(t *testing.T, f *fixture) string {
			p := filepath.Join(f.dir, "api-token")
			chmod(t, p, 0o640)
			return p
		}},
		{name: "api tls_key_file 0644", api: true, code: 1, fix: "chmod 600 %s", setup: func(t *testing.T, f *fixture) string {
			p := filepath.Join(f.dir, "api.key")
			chmod(t, p, 0o644)
			return p
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			natsBlock := `nats { listen = "127.0.0.1:0" }`
			if tt.api {
				natsBlock += fmt.Sprintf(`
api {
  listen        = %q
  token_file    = "./api-token"
  tls_cert_file = "./api.crt"
  tls_key_file  = "./api.key"
}`, testenv.FreeAddr(t))
			}
			f := newFixture(t, natsBlock)
			if tt.api {
				selfSigned(t, f.dir) // api.crt 0644, api.key 0600
				write(t, filepath.Join(f.dir, "api-token"), apiToken+"\n", 0o600)
			}
			path := tt.setup(t, f)
			before := mode(t, path)
			code, out := runRefused(t, f)
			if code != tt.code {
				t.Errorf("exit code %d; want %d", code, tt.code)
			}
			want := []string{path + " is accessible by other users (mode " + fmt.Sprintf("%04o", before.Perm()) + ")", fmt.Sprintf(tt.fix, path)}
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("the output lacks %q:\n%s", w, out)
				}
			}
			// Refused, not repaired, and nothing opened: no store, no socket.
			if got := mode(t, path); got != before {
				t.Errorf("the daemon changed the mode of %s from %v to %v", path, before, got)
			}
			for _, n := range []string{"jetstream", "dirsyncd.sock"} {
				if _, err := os.Stat(filepath.Join(f.dir, "data", n)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("data/%s exists after the refusal (%v): the daemon opened it before checking", n, err)
				}
			}
			assertNoSecrets(t, "the output", out)
			if strings.Contains(out, string(seed)) {
				t.Error("the output carries the nkey seed")
			}
		})
	}
}

// A daemon started with private files keeps them private: the data
// directory and store 0700, the nkey seed and the socket 0600.
func TestAccessFilesCreatedOwnerOnly(t *testing.T) {
	f := newFixture(t, `nats { listen = "127.0.0.1:0" }`)
	f.start()
	data := filepath.Join(f.dir, "data")
	for _, c := range []struct {
		name string
		want os.FileMode
	}{
		{"", os.ModeDir | 0o700},
		{"jetstream", os.ModeDir | 0o700},
		{"nats-user.nk", 0o600},
		{"dirsyncd.sock", os.ModeSocket | 0o600},
	} {
		if got := mode(t, filepath.Join(data, c.name)); got != c.want {
			t.Errorf("data/%s: mode %v; want %v", c.name, got, c.want)
		}
	}
}

// A client_secret_file made readable by others while the daemon runs
// fails the next job, naming the file and the fix; restored, the next
// sync completes.
func TestAccessSecretFileAtSync(t *testing.T) {
	f := newFixture(t, `nats { listen = "127.0.0.1:0" }`)
	f.start()
	secretFile := filepath.Join(f.dir, "secret")
	chmod(t, secretFile, 0o644)
	ctx := context.Background()
	j, err := f.api().Sync(ctx, "demo", api.SyncRequest{})
	if err != nil {
		t.Fatal(err)
	}
	j = f.waitJob(j.ID, 60*time.Second, final)
	if j.State != "FAILED" || !strings.Contains(j.Reason, secretFile+" is accessible by other users (mode 0644)") ||
		!strings.Contains(j.Reason, "chmod 600 "+secretFile) {
		t.Errorf("job with a 0644 secret file: %s %q; want FAILED naming %s and chmod 600", j.State, j.Reason, secretFile)
	}
	chmod(t, secretFile, 0o600)
	j, err = f.api().Sync(ctx, "demo", api.SyncRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if j = f.waitJob(j.ID, 60*time.Second, final); j.State != "COMPLETED" {
		t.Errorf("job after chmod 600: %s %q", j.State, j.Reason)
	}
	assertNoSecret(t, "the daemon log", f.log.String())
}

// The embedded NATS server accepts only the daemon's nkey, and only on the
// configured address.
func TestAccessEmbeddedNATS(t *testing.T) {
	listen := testenv.FreeAddr(t)
	f := newFixture(t, fmt.Sprintf(`nats { listen = %q }`, listen))
	f.start()
	url := "nats://" + listen
	connect := func(opts ...nats.Option) error {
		nc, err := nats.Connect(url, append(opts, nats.Timeout(5*time.Second), nats.NoReconnect())...)
		if err == nil {
			nc.Close()
		}
		return err
	}

	if err := connect(); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("connecting without credentials: %v; want an authorization violation", err)
	}
	other, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	otherPub, _ := other.PublicKey()
	if err := connect(nats.Nkey(otherPub, other.Sign)); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("connecting with another nkey: %v; want an authorization violation", err)
	}
	if err := connect(nats.UserInfo("dirsync", "dirsync")); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("connecting with a user and password: %v; want an authorization violation", err)
	}
	// The daemon's seed gets in: the refusals above are about credentials.
	opt, err := nats.NkeyOptionFromSeed(filepath.Join(f.dir, "data", "nats-user.nk"))
	if err != nil {
		t.Fatal(err)
	}
	if err := connect(opt); err != nil {
		t.Errorf("connecting with data/nats-user.nk: %v", err)
	}

	t.Run("only on the configured address", func(t *testing.T) {
		_, port, _ := net.SplitHostPort(listen)
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			t.Fatal(err)
		}
		var tried []string
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
				continue
			}
			hostport := net.JoinHostPort(ipn.IP.String(), port)
			tried = append(tried, hostport)
			if c, err := net.DialTimeout("tcp", hostport, 2*time.Second); err == nil {
				c.Close()
				t.Errorf("the embedded NATS server answers on %s; it must listen only on %s", hostport, listen)
			} else if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Logf("%s: %v (not refused outright, but not reachable either)", hostport, err)
			}
		}
		if len(tried) == 0 {
			t.Skip("this machine has no non-loopback address to try")
		}
		t.Logf("refused on %v", tried)
	})
	assertNoSecret(t, "the daemon log", f.log.String())
}

// The TCP API over real HTTP refuses a missing, a wrong and an expired
// token, each with its challenge, and echoes none of them in the answer
// or the daemon's log; a rotation by SIGHUP applies at once.
func TestAccessAPITokens(t *testing.T) {
	const (
		expired = "ExpiredToken-0123456789abcdefgh"
		current = "CurrentToken-abcdefgh0123456789"
		next    = "NextToken-9876543210zyxwvutsrq"
		wrong   = "WrongToken-0123456789abcdefghij"
	)
	tokens := []string{expired, current, next, wrong}
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "api-token")
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	write(t, tokenFile, fmt.Sprintf("# rotated out an hour ago\n%s expires=%s\n%s\n", expired, past, current), 0o600)
	addr := testenv.FreeAddr(t)
	f := newFixture(t, fmt.Sprintf(`nats { listen = "127.0.0.1:0" }
api {
  listen     = %q
  token_file = %q
}`, addr, tokenFile))
	f.start()
	var answers strings.Builder
	call := func(token string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/status", nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(&answers, "%v\n%s\n", resp.Header, b)
		return resp.StatusCode, resp.Header, string(b)
	}
	tests := []struct {
		name, token, challenge, message string
		code                            int
	}{
		{"missing", "", `Bearer realm="dirsync"`, "needs the API token", 401},
		{"wrong", wrong, `Bearer realm="dirsync", error="invalid_token"`, "not an API token", 401},
		{"expired", expired, `Bearer realm="dirsync", error="invalid_token", error_description="the token expired"`,
			"use a current token from the api block's token_file", 401},
		{"current", current, "", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, hdr, body := call(tt.token)
			if code != tt.code || hdr.Get("WWW-Authenticate") != tt.challenge || !strings.Contains(body, tt.message) {
				t.Errorf("%d %q %s; want %d %q and %q", code, hdr.Get("WWW-Authenticate"), body, tt.code, tt.challenge, tt.message)
			}
		})
	}

	// Rotation: the current token is replaced; SIGHUP applies it.
	write(t, tokenFile, next+"\n", 0o600)
	if err := f.daemon.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if code, _, _ := call(next); code != http.StatusOK {
			return fmt.Errorf("the new token is not accepted after SIGHUP: %d", code)
		}
		return nil
	})
	if code, _, _ := call(current); code != http.StatusUnauthorized {
		t.Errorf("the replaced token after SIGHUP: %d; want 401", code)
	}
	if err := f.stop(); err != nil {
		t.Fatal(err)
	}

	log := f.log.String()
	if !strings.Contains(log, "an API token in token_file has expired") || !strings.Contains(log, "token_id") {
		t.Errorf("no warning at start about the expired token (by its ID):\n%s", log)
	}
	if !strings.Contains(log, "API request refused: its token expired") {
		t.Errorf("the refused expired token is not logged:\n%s", log)
	}
	for _, tok := range tokens {
		if strings.Contains(log, tok) {
			t.Errorf("the daemon log carries a token (%.10s…)", tok)
		}
		if strings.Contains(answers.String(), tok) {
			t.Errorf("an API answer (headers or body) carries a token (%.10s…)", tok)
		}
	}
}
