package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/csv"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dirsync/dirsync/connectors/graphsim"
	"github.com/dirsync/dirsync/daemon/api"

	"github.com/dirsync/dirsync/internal/testenv"
)

// apiToken is the bearer token of the TCP API in these tests.
const apiToken = "tP9vQm2XcL7rW4kZ8sJ3nB6yH1dF5gA0" // not a real credential

// selfSigned writes a certificate and key for 127.0.0.1 and returns a
// client TLS configuration that trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dirsyncd test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "api.crt"), filepath.Join(dir, "api.key")
	write(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), 0o644)
	write(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})), 0o600)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// notifySocket listens where a child's sd_notify messages arrive.
func notifySocket(t *testing.T) (string, chan string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	msgs := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return sock, msgs
}

// awaitNotify reads the notify socket's messages until one holds want,
// and returns it. guard only bounds a daemon that never sends it: the
// wait ends as soon as the message is there.
func awaitNotify(msgs <-chan string, want string, guard time.Duration) (string, error) {
	timeout := time.NewTimer(guard)
	defer timeout.Stop()
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				return "", fmt.Errorf("the notify socket closed before %s", want)
			}
			if strings.Contains(m, want) {
				return m, nil
			}
		case <-timeout.C:
			return "", fmt.Errorf("no %s on the notify socket within %s", want, guard)
		}
	}
}

// appliance is a daemon as an operator's monitoring and automation see it:
// the TCP API over HTTPS with a token.
type appliance struct {
	*fixture
	base   string
	tls    *tls.Config
	hc     *http.Client
	output bytes.Buffer // every HTTP answer body, for the secret check
}

func (a *appliance) get(path, token string) (int, http.Header, string) {
	a.t.Helper()
	return a.call(http.MethodGet, path, token, "")
}

func (a *appliance) call(method, path, token, body string) (int, http.Header, string) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a.output.Write(b)
	return resp.StatusCode, resp.Header, string(b)
}

// metric returns the value of the sample line that starts with name{labels}.
func metric(t *testing.T, scrape, sample string) float64 {
	t.Helper()
	for _, line := range strings.Split(scrape, "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	t.Errorf("no sample %s in the scrape", sample)
	return -1
}

// The appliance's done-when test: a child dirsyncd, READY=1 on a notify
// socket, a sync driven over the HTTPS API with a token (refused without
// one and with a wrong one), the job counted in /metrics, SIGHUP adding a
// connector, SIGTERM exiting cleanly; and nothing it produced carries a
// secret.
func TestApplianceOverHTTPAPI(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, clientTLS := selfSigned(t, dir)
	tokenFile := filepath.Join(dir, "api-token")
	write(t, tokenFile, apiToken+"\n", 0o600)
	addr := testenv.FreeAddr(t)
	f := newFixture(t, fmt.Sprintf(`nats { listen = "127.0.0.1:0" }
api {
  listen        = %q
  token_file    = %q
  tls_cert_file = %q
  tls_key_file  = %q
}`, addr, tokenFile, certFile, keyFile))
	sock, msgs := notifySocket(t)
	f.env = []string{"NOTIFY_SOCKET=" + sock}
	a := &appliance{fixture: f, base: "https://" + addr, tls: clientTLS,
		hc: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: clientTLS}}}

	f.start()
	if _, err := awaitNotify(msgs, "READY=1", 60*time.Second); err != nil {
		t.Fatal(err)
	}

	// Health and metrics need no token; everything else does.
	if code, _, body := a.get("/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if code, _, body := a.get("/readyz", ""); code != http.StatusOK {
		t.Errorf("/readyz: %d %s", code, body)
	}
	code, hdr, body := a.call(http.MethodPost, "/v1/connectors/demo/sync", "", "{}")
	if code != http.StatusUnauthorized || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("sync without a token: %d %q %s; want 401 with WWW-Authenticate: Bearer", code, hdr.Get("WWW-Authenticate"), body)
	}
	const wrong = "wrong-token-0123456789abcdef"
	code, _, body = a.call(http.MethodPost, "/v1/connectors/demo/sync", wrong, "{}")
	if code != http.StatusUnauthorized || strings.Contains(body, wrong) {
		t.Fatalf("sync with a wrong token: %d %s; want 401 that does not echo the token", code, body)
	}
	if code, _, _ := a.get("/v1/jobs", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /v1/jobs without a token: %d; want 401", code)
	}
	// Plain HTTP on the TLS port gets nowhere.
	if resp, err := http.Get("http://" + addr + "/v1/status"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP to the TLS listener answered 200: %s", b)
		}
	}

	c := api.NewHTTPClient(a.base, apiToken, clientTLS)
	ctx := context.Background()
	job, err := c.Sync(ctx, "demo", api.SyncRequest{})
	if err != nil {
		t.Fatalf("sync with the token: %v", err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if job, err = c.Job(ctx, job.ID); err != nil || !final(job) {
			return fmt.Errorf("job %s: %s, %v", job.ID, job.State, err)
		}
		return nil
	})
	if job.State != "COMPLETED" || job.Summary == nil {
		t.Fatalf("job %s ended %s: %s", job.ID, job.State, job.Reason)
	}
	if job.RequestedBy != "api" {
		t.Errorf("job requested by %q; want api", job.RequestedBy)
	}

	// The recipients over the API equal what the tenant should give, page
	// by page and as a CSV export.
	want := expectedRecipients(f.sim)
	var ids []string
	cursor := ""
	for pages := 0; ; pages++ {
		page, err := c.RecipientPage(ctx, api.RecipientFilter{Connector: "demo"}, 25, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Items {
			ids = append(ids, r.ID)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
		if pages > 100 {
			t.Fatal("paging does not end")
		}
	}
	if len(ids) != len(want) || len(slices.Compact(slices.Sorted(slices.Values(ids)))) != len(want) {
		t.Errorf("paged %d recipients (%d distinct); want %d", len(ids), len(slices.Compact(slices.Sorted(slices.Values(ids)))), len(want))
	}
	var csvOut bytes.Buffer
	if err := c.Export(ctx, "csv", api.RecipientFilter{Connector: "demo"}, &csvOut); err != nil {
		t.Fatal(err)
	}
	a.output.Write(csvOut.Bytes())
	rows, err := csv.NewReader(bytes.NewReader(csvOut.Bytes())).ReadAll()
	if err != nil || len(rows) != len(want)+1 {
		t.Errorf("CSV export: %d rows, %v; want a header and %d rows", len(rows), err, len(want))
	}

	// The job is counted in /metrics, with what it read and changed.
	code, _, scrape := a.get("/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	if v := metric(t, scrape, `dirsync_jobs_total{connector="demo",state="COMPLETED"}`); v != 1 {
		t.Errorf("dirsync_jobs_total COMPLETED = %v; want 1", v)
	}
	if v := metric(t, scrape, `dirsync_recipient_changes_total{connector="demo",kind="created"}`); v != float64(job.Summary.RecipientsCreated) || v != float64(len(want)) {
		t.Errorf("recipient_changes created = %v; the job created %d, the tenant gives %d", v, job.Summary.RecipientsCreated, len(want))
	}
	// The neutral counter and its deprecated Graph name count the same.
	for _, name := range []string{"dirsync_directory_requests_total", "dirsync_graph_requests_total"} {
		if v := metric(t, scrape, name+`{connector="demo"}`); v != float64(job.Summary.DirectoryRequests) || v == 0 {
			t.Errorf("%s = %v; the job made %d", name, v, job.Summary.DirectoryRequests)
		}
	}
	if v := metric(t, scrape, `dirsync_directory_objects_retrieved_total{connector="demo",kind="user"}`); v != float64(job.Summary.UsersRetrieved) {
		t.Errorf("users retrieved = %v; the job read %d", v, job.Summary.UsersRetrieved)
	}
	if v := metric(t, scrape, `dirsync_recipients{connector="demo",status="active"}`); v != float64(len(want)) {
		t.Errorf("dirsync_recipients active = %v; want %d", v, len(want))
	}
	if v := metric(t, scrape, `dirsync_events_published_total`); v < float64(job.Summary.DirectoryEvents+len(want)) {
		t.Errorf("events_published = %v; the job alone wrote %d directory and %d recipient events", v, job.Summary.DirectoryEvents, len(want))
	}
	if v := metric(t, scrape, `dirsync_projection_lag_events`); v != 0 {
		t.Errorf("projection lag %v after the job completed", v)
	}
	if v := metric(t, scrape, `dirsync_plugin_starts_total{plugin="azuread"}`); v < 1 {
		t.Errorf("plugin_starts = %v", v)
	}
	metric(t, scrape, `dirsync_job_duration_seconds_count{connector="demo",state="COMPLETED"}`)

	// SIGHUP with a new connector: it appears over the API.
	orig, err := os.ReadFile(f.config)
	if err != nil {
		t.Fatal(err)
	}
	wrongBlock := string(orig[strings.Index(string(orig), `connector "wrong" {`):])
	write(t, f.config, string(orig)+strings.Replace(wrongBlock, `connector "wrong" {`, `connector "third" {`, 1), 0o644)
	if err := f.daemon.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if code, _, body := a.get("/v1/connectors", apiToken); code != http.StatusOK || !strings.Contains(body, `"third"`) {
			return fmt.Errorf("connector third did not appear after SIGHUP: %d %s", code, body)
		}
		return nil
	})

	// SIGTERM: STOPPING=1 and exit 0.
	if err := f.stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	// The daemon has exited: STOPPING=1 was sent before, and is read
	// at once; the guard only bounds a daemon that never sent it.
	if _, err := awaitNotify(msgs, "STOPPING=1", 30*time.Second); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}

	// Everything the run produced: the daemon's log, every API answer, and
	// every file in the data directory (the JetStream store and KV
	// buckets, raw) must be free of the client secret and the API token.
	assertNoSecrets(t, "the daemon log", f.log.String())
	assertNoSecrets(t, "the API answers", a.output.String())
	scanned := 0
	err = filepath.WalkDir(filepath.Join(f.dir, "data"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		scanned += len(b)
		assertNoSecrets(t, path, string(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if scanned < 10_000 {
		t.Errorf("scanned only %d bytes of the data directory; the store should be there", scanned)
	}
}

// assertNoSecrets fails if s carries the client secret or the API token.
func assertNoSecrets(t *testing.T, what, s string) {
	t.Helper()
	assertNoSecret(t, what, s)
	if strings.Contains(s, apiToken) {
		t.Errorf("%s contains the API token", what)
	}
}

// Every log line of a job, the plugin's included, names the job and the
// connector; SIGTERM during a job lets it finish within shutdown_grace.
func TestJobLogLinesAndGracefulStop(t *testing.T) {
	// Graph answers slowly, so the job is still RETRIEVING at SIGTERM.
	f := newFixtureWith(t, `nats { listen = "127.0.0.1:0" }`, fixtureOptions{users: 3000, groups: 30,
		sim: func(c *graphsim.Config) { c.Faults.Latency = 100 * time.Millisecond }})
	f.start()
	var j jobJSON
	f.cliJSON(&j, "sync", "demo")
	waitState := func(want string) {
		testenv.Eventually(t, 60*time.Second, func() error {
			job, err := f.api().Job(context.Background(), j.ID)
			if err == nil && final(job) && job.State != want {
				t.Fatalf("job ended %s before %s", job.State, want)
			}
			if err != nil || job.State != want {
				return fmt.Errorf("job never %s (%s, %v)", want, job.State, err)
			}
			return nil
		})
	}
	waitState("RETRIEVING")
	if err := f.stop(); err != nil {
		t.Fatalf("SIGTERM during a job: %v", err)
	}
	if !strings.Contains(f.log.String(), "letting running jobs finish") {
		t.Error("SIGTERM did not wait for the running job")
	}
	f.start()
	got := f.waitJob(j.ID, 10*time.Second, final)
	if got.State != "COMPLETED" {
		t.Fatalf("job after SIGTERM within shutdown_grace ended %s: %s; want COMPLETED", got.State, got.Reason)
	}

	lines, pluginLines := 0, 0
	for _, line := range strings.Split(f.log.String(), "\n") {
		plugin := strings.Contains(line, `"msg":"sync started"`) && strings.Contains(line, `"logger":"dirsync-azuread`)
		if (!strings.Contains(line, j.ID) && !plugin) || strings.Contains(line, `"msg":"stopping`) {
			continue
		}
		lines++
		if plugin {
			pluginLines++
		}
		if !strings.Contains(line, `"job":"`+j.ID+`"`) || !strings.Contains(line, `"connector":"demo"`) {
			t.Errorf("a log line of job %s lacks its job or connector: %s", j.ID, line)
		}
		if strings.Count(line, `"job":`) != 1 || strings.Count(line, `"connector":`) != 1 {
			t.Errorf("a log line repeats the job or connector key (JSON readers keep only one): %s", line)
		}
	}
	if lines < 5 || pluginLines != 1 {
		t.Errorf("%d log lines for job %s, %d of them the plugin's \"sync started\"; want at least 5 and 1", lines, j.ID, pluginLines)
	}
}
