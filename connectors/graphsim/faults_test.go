package graphsim

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestThrottling(t *testing.T) {
	s, c := startSim(t, Config{Users: 5, Groups: 2})
	tok := token(t, s, c)
	for _, tc := range []struct {
		retryAfter string
		check      func(string) bool
	}{
		{"", func(v string) bool { return v == "1" }},
		{"2", func(v string) bool { return v == "2" }},
		{"0.5", func(v string) bool { return v == "0.5" }},
		{"none", func(v string) bool { return v == "" }},
		{"http-date", func(v string) bool {
			d, err := http.ParseTime(v)
			ahead := time.Until(d)
			return err == nil && ahead > 0 && ahead <= 2*time.Second
		}},
	} {
		t.Run("retry-after "+tc.retryAfter, func(t *testing.T) {
			s.SetFaults(Faults{ThrottleRate: 1, RetryAfter: tc.retryAfter})
			defer s.SetFaults(Faults{})
			for _, p := range []string{"/v1.0/users", "/v1.0/groups/delta", "/v1.0/users/" + s.Tenant().Users[0].ID} {
				r := get(t, c, s, tok, p, "client-request-id", "11111111-2222-4333-8444-555555555555")
				code, msg := graphErr(t, r)
				if r.status != 429 || code != "TooManyRequests" || msg != "Please retry again later." {
					t.Fatalf("%s: %d %s", p, r.status, r.body)
				}
				inner := r.json["error"].(map[string]any)["innerError"].(map[string]any)
				if inner["status"] != "429" || inner["code"] != "429" {
					t.Errorf("innerError %v", inner)
				}
				if v := r.header.Get("Retry-After"); !tc.check(v) || (tc.retryAfter == "none") == (len(r.header.Values("Retry-After")) > 0) {
					t.Errorf("Retry-After %q", v)
				}
			}
			// Token, metadata and admin endpoints are never faulted.
			token(t, s, c)
			if r := admin(t, s, c, http.MethodGet, "/_graphsim/faults", ""); r.status != 200 {
				t.Errorf("admin under throttling: %d", r.status)
			}
		})
	}
}

func TestServerErrorsAndDown(t *testing.T) {
	s, c := startSim(t, Config{Users: 5, Groups: 2, Faults: Faults{ServerErrorRate: 1, RetryAfter: "3"}})
	tok := token(t, s, c)
	r := get(t, c, s, tok, "/v1.0/users")
	if code, msg := graphErr(t, r); r.status != 503 || code != "serviceNotAvailable" || msg != "Service unavailable" || r.header.Get("Retry-After") != "3" {
		t.Errorf("503: %d %s %v", r.status, r.body, r.header)
	}
	s.SetFaults(Faults{GatewayTimeoutRate: 1})
	if r := get(t, c, s, tok, "/v1.0/users"); r.status != 504 {
		t.Errorf("504: %d", r.status)
	} else if code, _ := graphErr(t, r); code != "GatewayTimeout" {
		t.Errorf("504 code %s", code)
	}
	s.SetFaults(Faults{Down: true})
	for range 3 {
		if r := get(t, c, s, tok, "/v1.0/groups"); r.status != 503 {
			t.Errorf("down: %d", r.status)
		}
	}
	s.SetFaults(Faults{})
	if r := get(t, c, s, tok, "/v1.0/groups"); r.status != 200 {
		t.Errorf("after clearing: %d", r.status)
	}

	// Rates are shares, deterministic for a seed.
	fates := func(seed int64) string {
		s.SetFaults(Faults{ServerErrorRate: 0.3, ThrottleRate: 0.2, Seed: seed})
		var b strings.Builder
		for range 200 {
			b.WriteString(strconv.Itoa(get(t, c, s, tok, "/v1.0/users?$top=1").status) + " ")
		}
		return b.String()
	}
	a, b := fates(5), fates(5)
	if a != b {
		t.Error("the same seed faulted other requests")
	}
	if fates(6) == a {
		t.Error("another seed faulted the same requests")
	}
	n503, n429 := strings.Count(a, "503"), strings.Count(a, "429")
	if n503 < 35 || n503 > 85 || n429 < 20 || n429 > 65 {
		t.Errorf("%d 503 and %d 429 of 200", n503, n429)
	}
	s.SetFaults(Faults{})
}

func TestResetAndLatency(t *testing.T) {
	s, c := startSim(t, Config{Users: 5, Groups: 2})
	tok := token(t, s, c)
	s.SetFaults(Faults{ResetRate: 1})
	// HTTP/1.1 (the test client) and HTTP/2.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CACertPEM())
	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	defer h2.CloseIdleConnections()
	for name, cl := range map[string]*http.Client{"http/1.1": c, "h2": h2} {
		req, _ := http.NewRequest(http.MethodGet, s.GraphURL()+"/users", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := cl.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: reset request answered %s (proto %s)", name, resp.Status, resp.Proto)
		}
	}
	if n := s.Counters()["GET /v1.0/users reset"]; n < 2 {
		t.Errorf("reset counter %d", n)
	}
	s.SetFaults(Faults{Latency: 150 * time.Millisecond})
	start := time.Now()
	if r := get(t, c, s, tok, "/v1.0/users"); r.status != 200 {
		t.Errorf("latency: %d", r.status)
	}
	// A lower bound the server itself guarantees: it holds the request
	// on a 150ms timer, and a timer never fires early. A slow machine
	// only adds to it.
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("answered after %s", d)
	}
	// Latency is for Graph only: with an hour of it, the token endpoint
	// still answers. The client's timeout is a hang guard, far above any
	// machine's time for an undelayed answer, not a measurement.
	s.SetFaults(Faults{Latency: time.Hour})
	guarded := *c
	guarded.Timeout = 30 * time.Second
	token(t, s, &guarded)
	s.SetFaults(Faults{})
}

func TestTokenLifetime(t *testing.T) {
	s, c := startSim(t, Config{Users: 5, Groups: 2, TokenLifetime: 20 * time.Second})
	r := postToken(t, s, c, s.Tenant().ID, tokenForm(s), [2]string{})
	if r.json["expires_in"] != float64(20) || r.json["ext_expires_in"] != float64(20) {
		t.Errorf("expires_in %v", r.json["expires_in"])
	}
	tok := r.json["access_token"].(string)
	s.clockOffset.Store(int64(15 * time.Second))
	if r := get(t, c, s, tok, "/v1.0/users"); r.status != 200 {
		t.Errorf("before expiry: %d", r.status)
	}
	s.clockOffset.Store(int64(23 * time.Second))
	r = get(t, c, s, tok, "/v1.0/users")
	if code, msg := graphErr(t, r); r.status != 401 || code != "InvalidAuthenticationToken" || msg != "Lifetime validation failed, the token is expired." {
		t.Errorf("expired: %d %s %q", r.status, code, msg)
	}
	s.clockOffset.Store(0)
	s.SetTokenLifetime(time.Hour)
	if r := postToken(t, s, c, s.Tenant().ID, tokenForm(s), [2]string{}); r.json["expires_in"] != float64(3600) {
		t.Errorf("after SetTokenLifetime: %v", r.json["expires_in"])
	}
	if _, err := New(Config{ClientSecret: "s", TokenLifetime: -1}); err == nil {
		t.Error("negative TokenLifetime accepted")
	}
}

func TestCounters(t *testing.T) {
	s, c := startSim(t, Config{Users: 5, Groups: 2})
	tok := token(t, s, c)
	g := s.Tenant().Groups[0].ID
	get(t, c, s, tok, "/v1.0/users")
	get(t, c, s, tok, "/v1.0/users/delta()")
	get(t, c, s, tok, "/v1.0/users/delta")
	get(t, c, s, tok, "/v1.0/groups/"+g+"/members")
	get(t, c, s, tok, "/v1.0/groups/"+strings.ToUpper(g)+"/members/microsoft.graph.user")
	get(t, c, s, tok, "/v1.0/users/4f0e8d2c-1b3a-4c5d-9e7f-0a1b2c3d4e5f")
	get(t, c, s, "", "/v1.0/groups")
	get(t, c, s, tok, "/v1.0/applications")
	get(t, c, s, "", "/"+s.Tenant().ID+"/v2.0/.well-known/openid-configuration")
	admin(t, s, c, http.MethodGet, "/_graphsim/status", "")
	want := map[string]int64{
		"POST /token 200":                                         1,
		"GET /v1.0/users 200":                                     1,
		"GET /v1.0/users/delta 200":                               2,
		"GET /v1.0/groups/{id}/members 200":                       1,
		"GET /v1.0/groups/{id}/members/microsoft.graph.user 200":  1,
		"GET /v1.0/users/{id} 404":                                1,
		"GET /v1.0/groups 401":                                    1,
		"GET /v1.0/{unknown} 400":                                 1,
		"GET /{tenant}/v2.0/.well-known/openid-configuration 200": 1,
	}
	got := s.Counters()
	if len(got) != len(want) {
		t.Errorf("counters %v", got)
	}
	var graph int64
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s = %d, want %d", k, got[k], n)
		}
		if strings.Contains(k, " /v1.0/") {
			graph += n
		}
	}
	if s.Requests() != graph {
		t.Errorf("Requests %d, counters say %d", s.Requests(), graph)
	}
	s.ResetCounters()
	if len(s.Counters()) != 0 || s.Requests() != 0 {
		t.Errorf("after reset: %v %d", s.Counters(), s.Requests())
	}
}

// admin sends an admin request with the client secret.
func admin(t *testing.T, s *Sim, c *http.Client, method, path, body string) *response {
	t.Helper()
	req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.Config().ClientSecret)
	return do(t, c, req)
}

func TestAdminEndpoints(t *testing.T) {
	s, c := startSim(t, Config{Users: 20, Groups: 4})
	tn := s.Tenant()
	for _, auth := range []string{"", "Bearer wrong", "Basic " + s.Config().ClientSecret} {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/_graphsim/churn?n=1", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if r := do(t, c, req); r.status != 401 {
			t.Errorf("%q: %d", auth, r.status)
		}
	}
	if s.Version() != 0 {
		t.Fatal("an unauthenticated request changed the tenant")
	}
	u := tn.Users[0].ID
	steps := []struct {
		method, path, body string
		status             int
		check              func(r *response) bool
	}{
		{"POST", "/_graphsim/churn?n=5&seed=3", "", 200, func(r *response) bool { return len(r.json["changes"].([]any)) == 5 }},
		{"POST", "/_graphsim/churn?n=x", "", 400, nil},
		{"POST", "/_graphsim/users/" + u + "/disable", "", 200, func(r *response) bool { return r.json["accountEnabled"] == false }},
		{"POST", "/_graphsim/users/" + u + "/enable", "", 200, func(r *response) bool { return r.json["accountEnabled"] == true }},
		{"PATCH", "/_graphsim/users/" + u, `{"department":"Admin Dept","jobTitle":null}`, 200, func(r *response) bool {
			_, hasTitle := r.json["jobTitle"]
			return r.json["department"] == "Admin Dept" && !hasTitle && s.Tenant().User(u).JobTitle == ""
		}},
		{"PATCH", "/_graphsim/users/" + u, `{"shoeSize":44}`, 400, nil},
		{"POST", "/_graphsim/users/" + u + "/licenses?sku=f30db892-07e9-47e9-837c-80727f46fd3d", "", 200, func(r *response) bool {
			return len(r.json["assignedLicenses"].([]any)) == 1
		}},
		{"POST", "/_graphsim/users/" + u + "/delete", "", 200, func(r *response) bool { return r.json["permanent"] == false }},
		{"POST", "/_graphsim/users/" + u + "/delete", "", 400, nil},
		{"POST", "/_graphsim/users/" + u + "/restore", "", 200, func(r *response) bool { return r.json["id"] == u }},
		{"POST", "/_graphsim/users/" + u + "/delete?permanent=true", "", 200, func(r *response) bool { return r.json["permanent"] == true }},
		{"POST", "/_graphsim/users/" + u + "/restore", "", 404, nil},
		{"POST", "/_graphsim/users", `{"userPrincipalName":"cli.user@` + tn.Domain + `","displayName":"CLI User"}`, 200, func(r *response) bool {
			return isGUID(r.json["id"].(string)) && r.json["accountEnabled"] == true && r.json["userType"] == "Member"
		}},
		{"POST", "/_graphsim/groups/" + tn.Groups[1].ID + "/members/add", `{"ids":["` + tn.Users[5].ID + `"]}`, 200, nil},
		{"POST", "/_graphsim/groups/" + tn.Groups[1].ID + "/members/remove?id=" + tn.Users[5].ID, "", 200, nil},
		{"POST", "/_graphsim/groups/" + tn.Groups[1].ID + "/members/remove?id=" + tn.Users[5].ID, "", 400, nil},
		{"POST", "/_graphsim/faults", `{"throttleRate":0.25,"retryAfter":"0.5","latency":"20ms","seed":4}`, 200, func(r *response) bool {
			return r.json["throttleRate"] == 0.25 && r.json["latency"] == "20ms" && s.Faults().Latency == 20*time.Millisecond
		}},
		{"POST", "/_graphsim/faults", `{"throttleRate":2}`, 400, nil},
		{"POST", "/_graphsim/faults", `{"bogus":1}`, 400, nil},
		{"POST", "/_graphsim/faults", `{}`, 200, func(r *response) bool { return s.Faults() == Faults{} }},
		{"POST", "/_graphsim/settings", `{"tokenLifetime":"90s","deltaTokenTTL":"1h"}`, 200, func(r *response) bool {
			return s.TokenLifetime() == 90*time.Second && s.DeltaTokenTTL() == time.Hour
		}},
		{"POST", "/_graphsim/expire-delta?mode=bad-request", "", 200, func(r *response) bool { return *s.expireMode.Load() == ExpiryBadRequest }},
		{"POST", "/_graphsim/expire-delta?mode=nope", "", 400, nil},
		{"GET", "/_graphsim/counters", "", 200, func(r *response) bool { _, ok := r.json["counters"].(map[string]any); return ok }},
		{"DELETE", "/_graphsim/counters", "", 200, nil},
		{"GET", "/_graphsim/status", "", 200, func(r *response) bool { return r.json["users"] == float64(len(s.Tenant().Users)) }},
		{"GET", "/_graphsim/churn", "", 405, nil},
		{"GET", "/_graphsim/nothing", "", 404, nil},
	}
	for _, st := range steps {
		r := admin(t, s, c, st.method, st.path, st.body)
		if r.status != st.status || st.check != nil && !st.check(r) {
			t.Errorf("%s %s: %d %s", st.method, st.path, r.status, r.body)
		}
		if r.status >= 400 {
			if msg, _ := r.json["error"].(string); msg == "" {
				t.Errorf("%s %s: error body %s", st.method, st.path, r.body)
			}
		}
	}
}

func TestFaultsJSON(t *testing.T) {
	f := Faults{ThrottleRate: 0.3, RetryAfter: "http-date", ServerErrorRate: 0.1, GatewayTimeoutRate: 0.05, ResetRate: 0.01, Latency: 1500 * time.Millisecond, Down: true, Seed: 9}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var back Faults
	if err := json.Unmarshal(b, &back); err != nil || back != f {
		t.Errorf("round trip %s: %+v %v", b, back, err)
	}
	if err := json.Unmarshal([]byte(`{"latency":250}`), &back); err != nil || back.Latency != 250*time.Millisecond {
		t.Errorf("latency in ms: %+v %v", back, err)
	}
	for _, bad := range []Faults{{ThrottleRate: -0.1}, {ResetRate: 1.5}, {RetryAfter: "soon"}, {Latency: -1}} {
		if _, err := New(Config{ClientSecret: "s", Faults: bad}); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
