package graphsim

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const testSecret = "Xy78Q~abcdefghijklmnopqrstuvwxyz01234567"

// startSim starts a Sim for one test and a client that trusts its CA.
func startSim(t *testing.T, cfg Config) (*Sim, *http.Client) {
	t.Helper()
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = testSecret
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("Start: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CACertPEM()) {
		t.Fatal("CACertPEM holds no certificate")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, &http.Client{Transport: tr}
}

// response is a decoded HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

func do(t *testing.T, c *http.Client, req *http.Request) *response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := &response{status: resp.StatusCode, header: resp.Header, body: b}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &r.json); err != nil {
			t.Fatalf("%s %s: body is not a JSON object: %v\n%s", req.Method, req.URL, err, b)
		}
	}
	return r
}

// postToken posts a token request form to tenant's token endpoint.
func postToken(t *testing.T, s *Sim, c *http.Client, tenant string, form url.Values, basic [2]string) *response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+"/"+tenant+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic[0] != "" {
		req.SetBasicAuth(basic[0], basic[1])
	}
	return do(t, c, req)
}

func tokenForm(s *Sim) url.Values {
	return url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {s.Config().ClientID},
		"client_secret": {s.Config().ClientSecret},
		"scope":         {"https://graph.microsoft.com/.default"},
	}
}

// token gets an access token the way MSAL asks for one.
func token(t *testing.T, s *Sim, c *http.Client) string {
	t.Helper()
	form := tokenForm(s)
	form.Set("scope", "https://graph.microsoft.com/.default openid offline_access profile")
	r := postToken(t, s, c, s.Tenant().ID, form, [2]string{})
	if r.status != http.StatusOK {
		t.Fatalf("token: %d %s", r.status, r.body)
	}
	return r.json["access_token"].(string)
}

// get sends a Graph GET with a bearer token ("" sends none). path is
// relative to URL() unless it is absolute.
func get(t *testing.T, c *http.Client, s *Sim, tok, path string, header ...string) *response {
	t.Helper()
	u := path
	if !strings.HasPrefix(path, "https://") {
		u = s.URL() + path
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, c, req)
}

// graphErr returns the code and message of a Graph error body and checks
// its shape.
func graphErr(t *testing.T, r *response) (code, msg string) {
	t.Helper()
	e, ok := r.json["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object in %s", r.body)
	}
	inner, ok := e["innerError"].(map[string]any)
	if !ok {
		t.Fatalf("no innerError in %s", r.body)
	}
	for _, k := range []string{"date", "request-id", "client-request-id"} {
		if s, _ := inner[k].(string); s == "" {
			t.Errorf("innerError.%s missing in %s", k, r.body)
		}
	}
	if inner["request-id"] != r.header.Get("request-id") {
		t.Errorf("innerError.request-id %v != header %q", inner["request-id"], r.header.Get("request-id"))
	}
	code, _ = e["code"].(string)
	msg, _ = e["message"].(string)
	return code, msg
}

// aadErr returns the error and first AADSTS code of a token error body.
func aadErr(t *testing.T, r *response) (string, int) {
	t.Helper()
	e, _ := r.json["error"].(string)
	codes, _ := r.json["error_codes"].([]any)
	if len(codes) != 1 {
		t.Fatalf("error_codes in %s", r.body)
	}
	for _, k := range []string{"error_description", "timestamp", "trace_id", "correlation_id"} {
		if s, _ := r.json[k].(string); s == "" {
			t.Errorf("%s missing in %s", k, r.body)
		}
	}
	return e, int(codes[0].(float64))
}

func values(t *testing.T, r *response) []map[string]any {
	t.Helper()
	raw, ok := r.json["value"].([]any)
	if !ok {
		t.Fatalf("no value array in %s", r.body)
	}
	out := make([]map[string]any, len(raw))
	for i, v := range raw {
		out[i] = v.(map[string]any)
	}
	return out
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
