package graphsim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/dirsync/dirsync/internal/testenv"
)

func TestOpenIDConfiguration(t *testing.T) {
	s, c := startSim(t, Config{Users: 5, Groups: 2})
	tid := s.Tenant().ID
	for _, tenant := range []string{tid, strings.ToUpper(tid), "contoso.onmicrosoft.com", "Contoso.OnMicrosoft.COM"} {
		r := get(t, c, s, "", "/"+tenant+"/v2.0/.well-known/openid-configuration")
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", tenant, r.status, r.body)
		}
		if got, want := r.json["issuer"], s.URL()+"/"+tid+"/v2.0"; got != want {
			t.Errorf("issuer = %v, want %v", got, want)
		}
		if got, want := r.json["token_endpoint"], s.URL()+"/"+tid+"/oauth2/v2.0/token"; got != want {
			t.Errorf("token_endpoint = %v, want %v", got, want)
		}
		if r.json["authorization_endpoint"] == nil || r.json["jwks_uri"] == nil {
			t.Errorf("missing endpoints: %s", r.body)
		}
	}
	r := get(t, c, s, "", "/nope.example/v2.0/.well-known/openid-configuration")
	if e, code := aadErr(t, r); r.status != http.StatusBadRequest || e != "invalid_tenant" || code != 90002 {
		t.Errorf("unknown tenant: %d %s", r.status, r.body)
	}
	if d := r.json["error_description"].(string); !strings.HasPrefix(d, "AADSTS90002: Tenant 'nope.example' not found.") || !strings.Contains(d, "\r\nTrace ID: ") {
		t.Errorf("description %q", d)
	}

	r = get(t, c, s, "", "/common/discovery/instance?api-version=1.1&authorization_endpoint="+url.QueryEscape(s.URL()+"/"+tid+"/oauth2/v2.0/authorize"))
	if r.status != http.StatusOK || r.json["tenant_discovery_endpoint"] != s.URL()+"/"+tid+"/v2.0/.well-known/openid-configuration" {
		t.Errorf("instance discovery: %d %s", r.status, r.body)
	}
}

func TestTokenEndpoint(t *testing.T) {
	s, c := startSim(t, Config{Users: 5, Groups: 2})
	cfg := s.Config()
	host := strings.TrimPrefix(s.URL(), "https://")
	with := func(k, v string) url.Values {
		f := tokenForm(s)
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}
	tests := []struct {
		name    string
		tenant  string
		form    url.Values
		basic   [2]string
		status  int
		err     string
		aadsts  int
		wantAud string
	}{
		{"client_secret_post", cfg.TenantID, tokenForm(s), [2]string{}, 200, "", 0, graphResource},
		{"by domain", "CONTOSO.onmicrosoft.com", tokenForm(s), [2]string{}, 200, "", 0, graphResource},
		{"client_secret_basic", cfg.TenantID, with("client_secret", ""), [2]string{url.QueryEscape(cfg.ClientID), url.QueryEscape(cfg.ClientSecret)}, 200, "", 0, graphResource},
		{"msal scopes", cfg.TenantID, with("scope", "https://graph.microsoft.com/.default openid offline_access profile"), [2]string{}, 200, "", 0, graphResource},
		{"graph resource with slash", cfg.TenantID, with("scope", "https://graph.microsoft.com//.default"), [2]string{}, 200, "", 0, graphResource},
		{"own host scope", cfg.TenantID, with("scope", s.URL()+"/.default"), [2]string{}, 200, "", 0, s.URL()},
		{"unknown tenant", "fabrikam.onmicrosoft.com", tokenForm(s), [2]string{}, 400, "invalid_tenant", 90002, ""},
		{"unknown client", cfg.TenantID, with("client_id", "11111111-2222-4333-8444-555555555555"), [2]string{}, 400, "unauthorized_client", 700016, ""},
		{"wrong secret", cfg.TenantID, with("client_secret", "nope"), [2]string{}, 401, "invalid_client", 7000215, ""},
		{"secret ID instead of value", cfg.TenantID, with("client_secret", cfg.SecretID), [2]string{}, 401, "invalid_client", 7000215, ""},
		{"no secret", cfg.TenantID, with("client_secret", ""), [2]string{}, 401, "invalid_client", 7000218, ""},
		{"scope without .default", cfg.TenantID, with("scope", "https://graph.microsoft.com/User.Read.All"), [2]string{}, 400, "invalid_scope", 70011, ""},
		{"foreign scope", cfg.TenantID, with("scope", "https://foo.microsoft.com/.default"), [2]string{}, 400, "invalid_scope", 70011, ""},
		{"two resources", cfg.TenantID, with("scope", "https://graph.microsoft.com/.default https://"+host+"/.default"), [2]string{}, 400, "invalid_scope", 70011, ""},
		{"missing scope", cfg.TenantID, with("scope", ""), [2]string{}, 400, "invalid_request", 900144, ""},
		{"password grant", cfg.TenantID, with("grant_type", "password"), [2]string{}, 400, "unsupported_grant_type", 70003, ""},
		{"no grant type", cfg.TenantID, with("grant_type", ""), [2]string{}, 400, "invalid_request", 900144, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := postToken(t, s, c, tc.tenant, tc.form, tc.basic)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if bytes.Contains(r.body, []byte(cfg.ClientSecret)) {
				t.Error("response contains the secret")
			}
			if tc.status != 200 {
				e, code := aadErr(t, r)
				if e != tc.err || code != tc.aadsts {
					t.Errorf("got %s AADSTS%d, want %s AADSTS%d", e, code, tc.err, tc.aadsts)
				}
				if d := r.json["error_description"].(string); !strings.HasPrefix(d, "AADSTS") || !strings.Contains(d, r.json["trace_id"].(string)) {
					t.Errorf("description %q", d)
				}
				return
			}
			if r.json["token_type"] != "Bearer" || r.json["expires_in"] != float64(3599) || r.json["ext_expires_in"] != float64(3599) {
				t.Errorf("token response %s", r.body)
			}
			parts := strings.Split(r.json["access_token"].(string), ".")
			if len(parts) != 3 {
				t.Fatalf("access token is not a JWT")
			}
			payload, err := base64.RawURLEncoding.DecodeString(parts[1])
			if err != nil {
				t.Fatal(err)
			}
			var claims map[string]any
			if err := json.Unmarshal(payload, &claims); err != nil {
				t.Fatal(err)
			}
			if claims["aud"] != tc.wantAud || claims["tid"] != cfg.TenantID || claims["appid"] != cfg.ClientID ||
				!strings.HasPrefix(claims["iss"].(string), s.URL()+"/"+cfg.TenantID) {
				t.Errorf("claims %v", claims)
			}
			for _, k := range []string{"iat", "nbf", "exp"} {
				if _, ok := claims[k].(float64); !ok {
					t.Errorf("claim %s missing", k)
				}
			}
			if !reflect.DeepEqual(claims["roles"], []any{"User.Read.All", "GroupMember.Read.All"}) {
				t.Errorf("roles %v", claims["roles"])
			}
		})
	}
	// The error description names the client ID and the directory.
	r := postToken(t, s, c, cfg.TenantID, with("client_id", "11111111-2222-4333-8444-555555555555"), [2]string{})
	if d := r.json["error_description"].(string); !strings.Contains(d, "'11111111-2222-4333-8444-555555555555' was not found in the directory 'Contoso'") {
		t.Errorf("AADSTS700016 description %q", d)
	}
	// GET is refused.
	if r := get(t, c, s, "", "/"+cfg.TenantID+"/oauth2/v2.0/token"); r.status != 400 {
		t.Errorf("GET token: %d", r.status)
	}
}

func TestExpiredSecret(t *testing.T) {
	s, c := startSim(t, Config{Users: 5, Groups: 2, SecretExpired: true})
	r := postToken(t, s, c, s.Tenant().ID, tokenForm(s), [2]string{})
	if e, code := aadErr(t, r); r.status != 401 || e != "invalid_client" || code != 7000222 {
		t.Errorf("expired secret: %d %s", r.status, r.body)
	}
	form := tokenForm(s)
	form.Set("client_secret", "wrong")
	r = postToken(t, s, c, s.Tenant().ID, form, [2]string{})
	if _, code := aadErr(t, r); code != 7000215 {
		t.Errorf("a wrong secret is reported as %d", code)
	}
}

func TestLogHidesSecrets(t *testing.T) {
	var buf testenv.LockedBuffer
	s, c := startSim(t, Config{Users: 5, Groups: 2, Log: &buf})
	tok := token(t, s, c)
	get(t, c, s, tok, "/v1.0/users?$top=2")
	s.Close() // flush: the log line is written after the response
	out := buf.String()
	if !strings.Contains(out, "GET /v1.0/users?$top=2 200") || !strings.Contains(out, "POST /"+s.Tenant().ID+"/oauth2/v2.0/token 200") {
		t.Errorf("log:\n%s", out)
	}
	if strings.Contains(out, testSecret) || strings.Contains(out, tok[:20]) {
		t.Errorf("log shows a secret or token:\n%s", out)
	}
}
