package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/internal/testenv"
)

// TestAPISlowClients: 200 clients that send the headers of a POST with a
// large Content-Length and never the body (half with the API token, half
// without) cannot wedge the daemon. While they hang on, status,
// /healthz and a sync request are answered; the ones without a token get
// 401 at once and are disconnected, the ones with a token 408 once the
// body deadline passes; when they have gone, the daemon holds no more
// file descriptors than before and syncs as ever.
func TestAPISlowClients(t *testing.T) {
	const token = "SlowClientsToken-0123456789abcdef"
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "api-token")
	write(t, tokenFile, token+"\n", 0o600)
	addr := testenv.FreeAddr(t)
	f := newFixture(t, fmt.Sprintf(`nats { listen = "127.0.0.1:0" }
api {
  listen     = %q
  token_file = %q
}`, addr, tokenFile))
	f.start()
	f.syncJob()
	pid := f.daemon.Cmd.Process.Pid
	baseline := openFiles(t, pid)

	call := func(method, path string) (int, string, error) {
		req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader("{}"))
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		// A guard, not a measurement: the body deadline the slow clients
		// wait out is 5 s, so an answer within it did not wait for them.
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}

	type answer struct {
		authed bool
		status string
		closed bool
		err    error
	}
	const slow = 200
	answers := make(chan answer, slow)
	var conns []net.Conn
	var mu sync.Mutex
	began := time.Now()
	for i := range slow {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("slow client %d: %v", i, err)
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		authed := i%2 == 0
		head := "POST /v1/connectors/demo/sync HTTP/1.1\r\nHost: dirsync\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n"
		if authed {
			head += "Authorization: Bearer " + token + "\r\n"
		}
		if _, err := io.WriteString(c, head+"\r\n"); err != nil {
			t.Fatalf("slow client %d: %v", i, err)
		}
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				answers <- answer{authed: authed, err: err}
				return
			}
			resp.Body.Close()
			answers <- answer{authed: authed, status: resp.Status, closed: resp.Close}
		}()
	}

	// While the slow clients hang on, the API answers.
	for _, path := range []string{"/v1/status", "/healthz", "/readyz"} {
		code, body, err := call(http.MethodGet, path)
		if err != nil || code != http.StatusOK {
			t.Errorf("GET %s among %d slow clients: %d %s %v", path, slow, code, body, err)
		}
	}
	code, body, err := call(http.MethodPost, "/v1/connectors/demo/sync")
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("sync request among %d slow clients: %d %s %v", slow, code, body, err)
	}
	answeredAt := time.Since(began)

	// Each slow client gets its answer: 401 at once without a token, 408
	// once the body deadline passed with one; both are disconnected.
	for range slow {
		select {
		case a := <-answers:
			want := map[bool]string{false: "401 Unauthorized", true: "408 Request Timeout"}[a.authed]
			if a.err != nil || a.status != want || !a.closed {
				t.Errorf("slow client (token: %v): %q closed=%v err=%v; want %q and the connection closed", a.authed, a.status, a.closed, a.err, want)
			}
		case <-time.After(2 * time.Minute):
			t.Fatal("a slow client was never answered: it holds its connection for good")
		}
	}
	mu.Lock()
	for _, c := range conns {
		c.Close()
	}
	mu.Unlock()

	// Once they have gone, nothing of them is left.
	testenv.Eventually(t, time.Minute, func() error {
		if n := openFiles(t, pid); n > baseline+10 {
			return fmt.Errorf("dirsyncd holds %d open files, %d before the slow clients came", n, baseline)
		}
		return nil
	})
	j := f.syncJob()
	if j.State != events.StateCompleted {
		t.Fatalf("sync after the slow clients: %s %s", j.State, j.Reason)
	}
	report(t, faultRow{Case: "api/slow-bodies", Seed: "-", Fault: fmt.Sprintf("%d clients send a POST's headers and never its body (half with the token)", slow),
		AtFault: "idle", Recovery: answeredAt})
	assertConvergedLog(t, f)
}

// openFiles counts the file descriptors process pid holds.
func openFiles(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("cannot count open files of the daemon (no /proc?): %v", err)
	}
	return len(ents)
}
