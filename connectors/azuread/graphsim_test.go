package azuread

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/connectors/graphsim"
)

// testSecret is distinctive so that any leak is found by substring.
const testSecret = "Zq8~sEcReT.vAlUe_0123456789abcdefXYZ"

// startSim starts a graphsim tenant for the test.
func startSim(t *testing.T, cfg graphsim.Config) *graphsim.Sim {
	t.Helper()
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = testSecret
	}
	sim, err := graphsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return sim
}

// simConfig is the config block pointing at sim, with ca_file written to a
// temporary folder and given relative to it. override changes keys (a nil
// value removes the key).
func simConfig(t *testing.T, sim *graphsim.Sim, override map[string]any) *connectorv1.Config {
	t.Helper()
	dir := t.TempDir()
	if err := sim.WriteCACert(filepath.Join(dir, "graphsim-ca.pem")); err != nil {
		t.Fatal(err)
	}
	m := map[string]any{
		"tenant":         sim.Tenant().Domain,
		"client_id":      sim.Config().ClientID,
		"client_secret":  testSecret,
		"authority_host": sim.AuthorityHost(),
		"graph_url":      sim.GraphURL(),
		"ca_file":        "graphsim-ca.pem",
	}
	for k, v := range override {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return &connectorv1.Config{Json: b, BaseDir: dir}
}

// logBuffer returns a debug-level logger writing JSON into a buffer.
func logBuffer() (*zap.Logger, *bytes.Buffer) {
	buf := &bytes.Buffer{}
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(buf)), zapcore.DebugLevel)), buf
}

// jwtShape matches the header and claims of a JWT: two base64url JSON
// objects joined by a dot. A bare "eyJ" is not enough: graphsim's delta
// tokens are random base64url and contain it now and then.
var jwtShape = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+`)

// assertNoSecrets fails when s holds the secret or something shaped like a JWT.
func assertNoSecrets(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, testSecret) {
		t.Errorf("%s contains the client secret: %s", what, s)
	}
	if tok := jwtShape.FindString(s); tok != "" {
		t.Errorf("%s seems to contain a token (%.20s…): %s", what, tok, s)
	}
}

func TestConnectionAgainstGraphsim(t *testing.T) {
	small := graphsim.Config{Users: 20, Groups: 5, Seed: 7}
	with := func(f func(c *graphsim.Config)) graphsim.Config {
		c := small
		f(&c)
		return c
	}
	tests := []struct {
		name     string
		sim      graphsim.Config
		override func(sim *graphsim.Sim) map[string]any
		code     string   // "" = success
		checks   []string // names of the checks that ran
		remedy   []string // parts of the failed check's remedy
	}{
		{name: "success", sim: small,
			checks: []string{CheckConfiguration, CheckToken, CheckReadUsers, CheckReadGroups, CheckMailboxes}},
		{name: "tenant by ID", sim: small,
			override: func(sim *graphsim.Sim) map[string]any { return map[string]any{"tenant": sim.Tenant().ID} },
			checks:   []string{CheckConfiguration, CheckToken, CheckReadUsers, CheckReadGroups, CheckMailboxes}},
		{name: "secret from file", sim: small,
			override: func(*graphsim.Sim) map[string]any {
				dir := t.TempDir()
				p := filepath.Join(dir, "secret")
				if err := os.WriteFile(p, []byte(testSecret+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				return map[string]any{"client_secret": nil, "client_secret_file": p}
			},
			checks: []string{CheckConfiguration, CheckToken, CheckReadUsers, CheckReadGroups, CheckMailboxes}},
		{name: "invalid config", sim: small,
			override: func(*graphsim.Sim) map[string]any { return map[string]any{"client_id": "nope"} },
			code:     CodeInvalidConfig, checks: []string{CheckConfiguration}, remedy: []string{"plugins.hcl"}},
		{name: "wrong tenant", sim: small,
			override: func(*graphsim.Sim) map[string]any { return map[string]any{"tenant": "fabrikam.onmicrosoft.com"} },
			code:     CodeTenantNotFound, checks: []string{CheckConfiguration, CheckToken}, remedy: []string{"primary domain", "authority_host"}},
		{name: "unknown client", sim: small,
			override: func(*graphsim.Sim) map[string]any {
				return map[string]any{"client_id": "11111111-2222-4333-8444-555555555555"}
			},
			code: CodeClientIDNotFound, checks: []string{CheckConfiguration, CheckToken}, remedy: []string{"Application (client) ID"}},
		{name: "wrong secret", sim: small,
			override: func(*graphsim.Sim) map[string]any { return map[string]any{"client_secret": "not-the-secret-value"} },
			code:     CodeInvalidClientSecret, checks: []string{CheckConfiguration, CheckToken}, remedy: []string{"Value", "Secret ID"}},
		{name: "secret ID instead of value", sim: small,
			override: func(sim *graphsim.Sim) map[string]any {
				return map[string]any{"client_secret": sim.Config().SecretID}
			},
			code: CodeInvalidClientSecret, checks: []string{CheckConfiguration, CheckToken}, remedy: []string{"Value", "looks like a Secret ID"}},
		{name: "expired secret", sim: with(func(c *graphsim.Config) { c.SecretExpired = true }),
			code: CodeClientSecretExpired, checks: []string{CheckConfiguration, CheckToken}, remedy: []string{"Certificates & secrets"}},
		{name: "no User.Read.All", sim: with(func(c *graphsim.Config) { c.Roles = []string{"GroupMember.Read.All"} }),
			code:   CodeMissingUserReadAll,
			checks: []string{CheckConfiguration, CheckToken, CheckReadUsers}, remedy: []string{"User.Read.All", "admin consent", "4 hours"}},
		{name: "no GroupMember.Read.All", sim: with(func(c *graphsim.Config) { c.Roles = []string{"User.Read.All"} }),
			code:   CodeMissingGroupMemberReadAll,
			checks: []string{CheckConfiguration, CheckToken, CheckReadUsers, CheckReadGroups}, remedy: []string{"GroupMember.Read.All", "admin consent"}},
		{name: "untrusted certificate", sim: small,
			override: func(*graphsim.Sim) map[string]any { return map[string]any{"ca_file": nil} },
			code:     CodeTLSUntrusted, checks: []string{CheckConfiguration, CheckToken}, remedy: []string{"ca_file"}},
		{name: "unreachable authority", sim: small,
			override: func(*graphsim.Sim) map[string]any { return map[string]any{"authority_host": "https://127.0.0.1:1/"} },
			code:     CodeUnreachable, checks: []string{CheckConfiguration, CheckToken}, remedy: []string{"127.0.0.1:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := startSim(t, tt.sim)
			var override map[string]any
			if tt.override != nil {
				override = tt.override(sim)
			}
			log, logs := logBuffer()
			resp, err := New(log).TestConnection(context.Background(), simConfig(t, sim, override))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for i, c := range resp.GetChecks() {
				names = append(names, c.GetName())
				assertNoSecrets(t, "check "+c.GetName(), c.String())
				last := i == len(resp.GetChecks())-1
				if !last && !c.GetOk() {
					t.Errorf("check %s failed but was not the last", c.GetName())
				}
			}
			assertNoSecrets(t, "log", logs.String())
			if strings.Join(names, ",") != strings.Join(tt.checks, ",") {
				t.Errorf("checks %v, want %v", names, tt.checks)
			}
			for _, c := range resp.GetChecks() {
				t.Logf("%s ok=%v code=%q detail=%q remedy=%q", c.GetName(), c.GetOk(), c.GetCode(), c.GetDetail(), c.GetRemedy())
			}
			last := resp.GetChecks()[len(resp.GetChecks())-1]
			if tt.code == "" {
				if !resp.GetOk() || !last.GetOk() {
					t.Fatalf("want success, got %v", resp)
				}
				if d := resp.GetChecks()[1].GetDetail(); !strings.Contains(d, "token acquired for tenant") {
					t.Errorf("token detail %q", d)
				}
				return
			}
			if resp.GetOk() || last.GetOk() {
				t.Fatalf("want failure %s, got %v", tt.code, resp)
			}
			if last.GetCode() != tt.code {
				t.Errorf("code %q, want %q (detail %q)", last.GetCode(), tt.code, last.GetDetail())
			}
			if last.GetDetail() == "" {
				t.Error("no detail")
			}
			for _, r := range tt.remedy {
				if !strings.Contains(last.GetRemedy(), r) {
					t.Errorf("remedy %q does not mention %q", last.GetRemedy(), r)
				}
			}
		})
	}
}

// collect runs a sync and returns its batches.
func collect(t *testing.T, c *Connector, cfg *connectorv1.Config) ([]*connectorv1.SyncBatch, error) {
	t.Helper()
	var batches []*connectorv1.SyncBatch
	err := c.Sync(context.Background(), &connectorv1.SyncRequest{Config: cfg, JobId: "job-1"}, func(b *connectorv1.SyncBatch) error {
		batches = append(batches, b)
		return nil
	})
	return batches, err
}

func TestSyncAgainstGraphsim(t *testing.T) {
	sim := startSim(t, graphsim.Config{Users: 1200, Groups: 30, Seed: 42})
	log, logs := logBuffer()
	batches, err := collect(t, New(log), simConfig(t, sim, nil))
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, "log", logs.String())
	tenant := sim.Tenant()

	users := map[string]*connectorv1.User{}
	groups := map[string]*connectorv1.Group{}
	members := map[string]map[string]bool{}
	for i, b := range batches {
		n := len(b.GetUsers()) + len(b.GetGroups())
		for _, m := range b.GetMemberships() {
			n += len(m.GetAddedUserIds())
			if len(m.GetRemovedUserIds()) != 0 {
				t.Errorf("full sync removed members of %s", m.GetGroupId())
			}
			set := members[m.GetGroupId()]
			if set == nil {
				set = map[string]bool{}
				members[m.GetGroupId()] = set
			}
			for _, id := range m.GetAddedUserIds() {
				if set[id] {
					t.Errorf("member %s of %s sent twice", id, m.GetGroupId())
				}
				set[id] = true
			}
		}
		if n > connector.MaxBatchObjects {
			t.Errorf("batch %d holds %d objects", i, n)
		}
		if b.GetProgress() == nil {
			t.Errorf("batch %d has no progress", i)
		}
		if b.GetDone() != (i == len(batches)-1) {
			t.Errorf("batch %d: done = %v", i, b.GetDone())
		}
		for _, u := range b.GetUsers() {
			if users[u.GetId()] != nil {
				t.Errorf("user %s sent twice", u.GetId())
			}
			users[u.GetId()] = u
		}
		for _, g := range b.GetGroups() {
			if groups[g.GetId()] != nil {
				t.Errorf("group %s sent twice", g.GetId())
			}
			groups[g.GetId()] = g
		}
	}
	last := batches[len(batches)-1]
	if !last.GetDone() || !last.GetComplete() || last.GetCursor() == "" {
		t.Errorf("last batch: done %v complete %v cursor %q", last.GetDone(), last.GetComplete(), last.GetCursor())
	}

	// Users: every one exactly once, with Graph's values.
	if len(users) != len(tenant.Users) {
		t.Errorf("got %d users, want %d", len(users), len(tenant.Users))
	}
	for _, want := range tenant.Users {
		got := users[want.ID]
		if got == nil {
			t.Errorf("user %s missing", want.ID)
			continue
		}
		for _, f := range []struct {
			name string
			got  *string
			want string
		}{
			{"userPrincipalName", got.UserPrincipalName, want.UserPrincipalName},
			{"mail", got.Mail, want.Mail},
			{"displayName", got.DisplayName, want.DisplayName},
			{"givenName", got.GivenName, want.GivenName},
			{"surname", got.Surname, want.Surname},
			{"department", got.Department, want.Department},
			{"jobTitle", got.JobTitle, want.JobTitle},
			{"userType", got.UserType, want.UserType},
		} {
			if f.got == nil || *f.got != f.want {
				t.Errorf("user %s %s = %v, want %q", want.ID, f.name, f.got, f.want)
			}
		}
		if got.AccountEnabled == nil || *got.AccountEnabled != want.AccountEnabled {
			t.Errorf("user %s accountEnabled = %v, want %v", want.ID, got.AccountEnabled, want.AccountEnabled)
		}
		if got.AssignedLicenseCount == nil || int(*got.AssignedLicenseCount) != len(want.AssignedLicenses) {
			t.Errorf("user %s licenses = %v, want %d", want.ID, got.AssignedLicenseCount, len(want.AssignedLicenses))
		}
	}

	// Groups: exactly the Unified ones; members: their user members.
	var skipped int64
	unified := 0
	for _, want := range tenant.Groups {
		got := groups[want.ID]
		if !want.IsUnified() {
			if got != nil {
				t.Errorf("group %s (%s) is not Unified but was sent", want.ID, want.DisplayName)
			}
			if members[want.ID] != nil {
				t.Errorf("members of non-Unified group %s were sent", want.ID)
			}
			continue
		}
		unified++
		if got == nil {
			t.Errorf("Unified group %s missing", want.ID)
			continue
		}
		if got.GetDisplayName() != want.DisplayName || got.GetMail() != want.Mail || !got.GetGroupTypesKnown() ||
			strings.Join(got.GetGroupTypes(), ",") != strings.Join(want.GroupTypes, ",") ||
			got.GetMailEnabled() != want.MailEnabled || got.GetSecurityEnabled() != want.SecurityEnabled {
			t.Errorf("group %s = %v, want %+v", want.ID, got, want)
		}
		var wantMembers []string
		for _, m := range want.Members {
			switch m.ODataType {
			case graphsim.TypeUser:
				wantMembers = append(wantMembers, m.ID)
			case graphsim.TypeGroup: // sent as added_group_ids
			default:
				skipped++
			}
		}
		var gotMembers []string
		for id := range members[want.ID] {
			gotMembers = append(gotMembers, id)
		}
		sort.Strings(wantMembers)
		sort.Strings(gotMembers)
		if strings.Join(gotMembers, ",") != strings.Join(wantMembers, ",") {
			t.Errorf("group %s: got %d user members, want %d", want.ID, len(gotMembers), len(wantMembers))
		}
	}
	if len(groups) != unified || unified == 0 {
		t.Errorf("got %d groups, want the %d Unified ones", len(groups), unified)
	}
	p := last.GetProgress()
	t.Logf("%d batches; final progress %v; graphsim served %d requests", len(batches), p, sim.Requests())
	if p.GetSkippedMembers() != skipped || skipped == 0 {
		t.Errorf("skipped members %d, want %d (> 0)", p.GetSkippedMembers(), skipped)
	}
	if p.GetUsers() != int64(len(tenant.Users)) || p.GetGroups() != int64(unified) {
		t.Errorf("progress %v", p)
	}
	// users/delta: 2 pages of at most 999, groups/delta with members: 1
	// page or more.
	if min := int64(2 + 1); p.GetRequests() < min || sim.Requests() != p.GetRequests()+p.GetRetries() {
		t.Errorf("requests %d (retries %d), graphsim served %d, want at least %d", p.GetRequests(), p.GetRetries(), sim.Requests(), min)
	}
	if !strings.Contains(logs.String(), `"read users"`) {
		t.Error("no info log at the end of the users phase")
	}
}

func TestSyncErrors(t *testing.T) {
	t.Run("missing permission", func(t *testing.T) {
		sim := startSim(t, graphsim.Config{Users: 10, Groups: 3, Seed: 1, Roles: []string{"User.Read.All"}})
		log, logs := logBuffer()
		_, err := collect(t, New(log), simConfig(t, sim, nil))
		var p *Problem
		if !errors.As(err, &p) || p.Code != CodeMissingGroupMemberReadAll {
			t.Fatalf("want %s, got %v", CodeMissingGroupMemberReadAll, err)
		}
		var ge *GraphError
		if !errors.As(err, &ge) || ge.Status != 403 || ge.Code != "Authorization_RequestDenied" {
			t.Errorf("no GraphError in the chain: %#v", ge)
		}
		t.Log(err)
		if !strings.HasPrefix(err.Error(), "reading groups: ") || !strings.Contains(err.Error(), "Graph 403 Authorization_RequestDenied") {
			t.Errorf("error does not say what failed: %v", err)
		}
		assertNoSecrets(t, "error", err.Error())
		assertNoSecrets(t, "log", logs.String())
	})
	t.Run("wrong secret", func(t *testing.T) {
		sim := startSim(t, graphsim.Config{Users: 10, Groups: 3, Seed: 1})
		log, logs := logBuffer()
		_, err := collect(t, New(log), simConfig(t, sim, map[string]any{"client_secret": testSecret + "x"}))
		var p *Problem
		if !errors.As(err, &p) || p.Code != CodeInvalidClientSecret {
			t.Fatalf("want %s, got %v", CodeInvalidClientSecret, err)
		}
		var ee *EntraError
		if !errors.As(err, &ee) || ee.AADSTS != 7000215 || ee.Code != "invalid_client" {
			t.Errorf("no EntraError in the chain: %#v", ee)
		}
		assertNoSecrets(t, "error", err.Error())
		assertNoSecrets(t, "log", logs.String())
	})
	t.Run("canceled", func(t *testing.T) {
		sim := startSim(t, graphsim.Config{Users: 1500, Groups: 3, Seed: 1})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		sent := 0
		err := New(nil).Sync(ctx, &connectorv1.SyncRequest{Config: simConfig(t, sim, nil)}, func(*connectorv1.SyncBatch) error {
			sent++
			cancel()
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("want context.Canceled, got %v", err)
		}
		if sent != 1 {
			t.Errorf("sent %d batches after cancel", sent)
		}
	})
	t.Run("send fails", func(t *testing.T) {
		sim := startSim(t, graphsim.Config{Users: 1500, Groups: 3, Seed: 1})
		boom := fmt.Errorf("stream closed")
		err := New(nil).Sync(context.Background(), &connectorv1.SyncRequest{Config: simConfig(t, sim, nil)}, func(*connectorv1.SyncBatch) error {
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("want the send error, got %v", err)
		}
	})
}

// TestSyncRetriesThrottledRequests serves graphsim behind a TLS front that
// answers every other Graph request's first attempt with 429: the sync
// still reads everything and counts the retries.
func TestSyncRetriesThrottledRequests(t *testing.T) {
	sim, err := graphsim.New(graphsim.Config{Users: 1100, Groups: 6, Seed: 3, ClientSecret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	n := 0
	front := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1.0/") && r.Header.Get("Retry-Attempt") == "" {
			mu.Lock()
			n++
			throttle := n%2 == 1 && !seen[r.URL.String()]
			seen[r.URL.String()] = true
			mu.Unlock()
			if throttle {
				w.Header().Set("Retry-After", "0")
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusTooManyRequests)
				_, _ = io.WriteString(w, `{"error":{"code":"TooManyRequests","message":"Too many requests."}}`)
				return
			}
		}
		sim.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	dir := t.TempDir()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{
		"tenant":         sim.Tenant().Domain,
		"client_id":      sim.Config().ClientID,
		"client_secret":  testSecret,
		"authority_host": front.URL + "/",
		"graph_url":      front.URL + "/v1.0",
		"ca_file":        "ca.pem",
	})
	batches, err := collect(t, New(nil), &connectorv1.Config{Json: b, BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	p := batches[len(batches)-1].GetProgress()
	t.Logf("final progress %v", p)
	if p.GetUsers() != 1100 || !batches[len(batches)-1].GetComplete() {
		t.Errorf("incomplete read: %v", p)
	}
	if p.GetRetries() == 0 || p.GetRetries() > p.GetRequests() {
		t.Errorf("retries %d of %d requests", p.GetRetries(), p.GetRequests())
	}
}

// TestJWTShape keeps the secret scan honest both ways: a JWT is caught, and a
// delta link whose random token happens to hold "eyJ" (seen in CI) is not.
func TestJWTShape(t *testing.T) {
	for _, tt := range []struct {
		s    string
		want bool
	}{
		{"Bearer eyJhbGciOiJSUzI1NiJ9.eyJyb2xlcyI6W119.c2ln", true},
		{`"link":"https://127.0.0.1:36733/v1.0/groups/delta?$deltatoken=AgMDAMTWydgGAAAAAOcHAAAHAAYKCAsb_7eyJFhiNBu_PM5OxVujKFM"`, false},
	} {
		if got := jwtShape.MatchString(tt.s); got != tt.want {
			t.Errorf("jwtShape.MatchString(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}
