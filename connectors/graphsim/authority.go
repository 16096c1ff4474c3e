package graphsim

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// knownTenant reports whether name (a domain or directory ID from a URL
// path) is this tenant.
func (s *Sim) knownTenant(name string) bool {
	return strings.EqualFold(name, s.cfg.TenantID) || strings.EqualFold(name, s.cfg.TenantDomain)
}

// aadError is the token endpoint's error body.
type aadError struct {
	Error         string `json:"error"`
	Description   string `json:"error_description"`
	Codes         []int  `json:"error_codes"`
	Timestamp     string `json:"timestamp"`
	TraceID       string `json:"trace_id"`
	CorrelationID string `json:"correlation_id"`
	ErrorURI      string `json:"error_uri,omitempty"`
}

// writeAADError answers with an Entra (AADSTS) error body.
func (s *Sim) writeAADError(w http.ResponseWriter, r *http.Request, status int, errCode string, aadsts int, msg string) {
	trace := randomGUID()
	corr := r.Header.Get("client-request-id")
	if !isGUID(corr) {
		corr = randomGUID()
	}
	ts := s.now().UTC().Format("2006-01-02 15:04:05Z")
	body := aadError{
		Error:         errCode,
		Description:   fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", aadsts, msg, trace, corr, ts),
		Codes:         []int{aadsts},
		Timestamp:     ts,
		TraceID:       trace,
		CorrelationID: corr,
		ErrorURI:      fmt.Sprintf("%s/error?code=%d", s.host(r), aadsts),
	}
	w.Header().Set("x-ms-request-id", trace)
	if r.Header.Get("client-request-id") != "" {
		w.Header().Set("client-request-id", r.Header.Get("client-request-id"))
	}
	writeAADJSON(w, status, body)
}

func writeAADJSON(w http.ResponseWriter, status int, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store, no-cache")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (s *Sim) invalidTenant(w http.ResponseWriter, r *http.Request, tenant string) {
	s.writeAADError(w, r, http.StatusBadRequest, "invalid_tenant", 90002, fmt.Sprintf(
		"Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", tenant))
}

// openIDConfigTemplate is openid_configuration_msal_mock_template.json with
// Microsoft's hosts replaced by graphsim's ({host}).
const openIDConfigTemplate = `{"token_endpoint":"{authority}/oauth2/v2.0/token","token_endpoint_auth_methods_supported":["client_secret_post","private_key_jwt","client_secret_basic"],"jwks_uri":"{authority}/discovery/v2.0/keys","response_modes_supported":["query","fragment","form_post"],"subject_types_supported":["pairwise"],"id_token_signing_alg_values_supported":["RS256"],"response_types_supported":["code","id_token","code id_token","id_token token"],"scopes_supported":["openid","profile","email","offline_access"],"issuer":"{authority}/v2.0","request_uri_parameter_supported":false,"userinfo_endpoint":"{host}/oidc/userinfo","authorization_endpoint":"{authority}/oauth2/v2.0/authorize","device_authorization_endpoint":"{authority}/oauth2/v2.0/devicecode","http_logout_supported":true,"frontchannel_logout_supported":true,"end_session_endpoint":"{authority}/oauth2/v2.0/logout","claims_supported":["sub","iss","cloud_instance_name","cloud_instance_host_name","cloud_graph_host_name","msgraph_host","aud","exp","iat","auth_time","acr","nonce","preferred_username","name","tid","ver","at_hash","c_hash","email"],"kerberos_endpoint":"{authority}/kerberos","tenant_region_scope":"NA","cloud_instance_name":"microsoftonline.com","cloud_graph_host_name":"graph.windows.net","msgraph_host":"{hostname}","rbac_url":"https://pas.windows.net"}`

// serveOpenIDConfig answers GET /{tenant}/v2.0/.well-known/openid-configuration.
func (s *Sim) serveOpenIDConfig(w http.ResponseWriter, r *http.Request, tenant string) {
	if !s.knownTenant(tenant) {
		s.invalidTenant(w, r, tenant)
		return
	}
	host := s.host(r)
	body := strings.NewReplacer(
		"{authority}", host+"/"+s.cfg.TenantID,
		"{host}", host,
		"{hostname}", r.Host,
	).Replace(openIDConfigTemplate)
	writeAADJSON(w, http.StatusOK, json.RawMessage(body))
}

// serveKeys answers the jwks_uri. Access tokens are HMAC-signed with a key
// only graphsim knows, so there is no public key to publish.
func (s *Sim) serveKeys(w http.ResponseWriter, r *http.Request, tenant string) {
	if !s.knownTenant(tenant) {
		s.invalidTenant(w, r, tenant)
		return
	}
	writeAADJSON(w, http.StatusOK, json.RawMessage(`{"keys":[]}`))
}

// serveInstanceDiscovery answers GET /common/discovery/instance like
// instance_discovery_msal_mock_template.json.
func (s *Sim) serveInstanceDiscovery(w http.ResponseWriter, r *http.Request) {
	tenant := "common"
	if u, err := url.Parse(r.URL.Query().Get("authorization_endpoint")); err == nil {
		if first, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/"); first != "" {
			tenant = first
		}
	}
	type metadata struct {
		PreferredNetwork string   `json:"preferred_network"`
		PreferredCache   string   `json:"preferred_cache"`
		Aliases          []string `json:"aliases"`
	}
	body := struct {
		TenantDiscoveryEndpoint string     `json:"tenant_discovery_endpoint"`
		APIVersion              string     `json:"api-version"`
		Metadata                []metadata `json:"metadata"`
	}{
		TenantDiscoveryEndpoint: s.host(r) + "/" + url.PathEscape(tenant) + "/v2.0/.well-known/openid-configuration",
		APIVersion:              "1.1",
		Metadata:                []metadata{{PreferredNetwork: r.Host, PreferredCache: r.Host, Aliases: []string{r.Host}}},
	}
	writeAADJSON(w, http.StatusOK, body)
}

// tokenResponse is token_response_success.json plus ext_expires_in.
type tokenResponse struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	ExtExpiresIn int    `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
}

// serveToken answers POST /{tenant}/oauth2/v2.0/token for the
// client_credentials grant with a client secret (client_secret_post or
// client_secret_basic).
func (s *Sim) serveToken(w http.ResponseWriter, r *http.Request, tenant string) {
	if !s.knownTenant(tenant) {
		s.invalidTenant(w, r, tenant)
		return
	}
	if r.Method != http.MethodPost {
		s.writeAADError(w, r, http.StatusBadRequest, "invalid_request", 900561,
			fmt.Sprintf("The endpoint only accepts POST, OPTIONS requests. Received a %s request.", r.Method))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.writeAADError(w, r, http.StatusBadRequest, "invalid_request", 900144,
			"The request body must contain the following parameter: 'grant_type'.")
		return
	}
	form := r.PostForm
	missing := func(param string) {
		s.writeAADError(w, r, http.StatusBadRequest, "invalid_request", 900144,
			fmt.Sprintf("The request body must contain the following parameter: '%s'.", param))
	}
	grant := form.Get("grant_type")
	switch grant {
	case "":
		missing("grant_type")
		return
	case "client_credentials":
	default:
		s.writeAADError(w, r, http.StatusBadRequest, "unsupported_grant_type", 70003,
			fmt.Sprintf("The app requested an unsupported grant type '%s'.", grant))
		return
	}

	clientID, secret := form.Get("client_id"), form.Get("client_secret")
	if user, pass, ok := r.BasicAuth(); ok {
		// client_secret_basic: both parts are form-urlencoded (RFC 6749 2.3.1).
		if u, err := url.QueryUnescape(user); err == nil {
			user = u
		}
		if p, err := url.QueryUnescape(pass); err == nil {
			pass = p
		}
		if clientID == "" {
			clientID = user
		}
		if secret == "" {
			secret = pass
		}
	}
	if clientID == "" {
		missing("client_id")
		return
	}
	if !strings.EqualFold(clientID, s.cfg.ClientID) {
		s.writeAADError(w, r, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf(
			"Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
			clientID, s.org))
		return
	}
	if secret == "" {
		s.writeAADError(w, r, http.StatusUnauthorized, "invalid_client", 7000218,
			"The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(s.cfg.ClientSecret)) != 1 {
		s.writeAADError(w, r, http.StatusUnauthorized, "invalid_client", 7000215, fmt.Sprintf(
			"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", s.cfg.ClientID))
		return
	}
	if s.cfg.SecretExpired {
		s.writeAADError(w, r, http.StatusUnauthorized, "invalid_client", 7000222,
			"The provided client secret keys are expired.")
		return
	}

	scope := form.Get("scope")
	if strings.TrimSpace(scope) == "" {
		missing("scope")
		return
	}
	aud, ok := s.audienceForScope(r, scope)
	if !ok {
		s.writeAADError(w, r, http.StatusBadRequest, "invalid_scope", 70011, fmt.Sprintf(
			"The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", scope))
		return
	}

	now := s.now()
	lifetime := s.TokenLifetime()
	lifeSec := int((lifetime + time.Second - 1) / time.Second) // whole seconds, rounded up
	claims := &tokenClaims{
		Aud:     aud,
		Iss:     s.host(r) + "/" + s.cfg.TenantID + "/",
		Iat:     now.Unix(),
		Nbf:     now.Unix(),
		Exp:     (now.Add(lifetime).UnixNano() + int64(time.Second) - 1) / int64(time.Second), // never before expires_in says
		AppID:   s.cfg.ClientID,
		AppName: "dirsync",
		IDTyp:   "app",
		OID:     s.spID,
		Roles:   s.Roles(),
		Sub:     s.spID,
		TID:     s.cfg.TenantID,
		UTI:     randomGUID(),
		Ver:     "1.0",
	}
	tok, err := signToken(s.signKey, claims)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if id := r.Header.Get("client-request-id"); id != "" {
		w.Header().Set("client-request-id", id)
	}
	w.Header().Set("x-ms-request-id", randomGUID())
	writeAADJSON(w, http.StatusOK, tokenResponse{
		TokenType:    "Bearer",
		ExpiresIn:    lifeSec,
		ExtExpiresIn: lifeSec,
		AccessToken:  tok,
	})
}

// audienceForScope checks a client-credentials scope: exactly one
// "{resource}/.default" (MSAL adds openid, profile and offline_access,
// which are ignored) for Graph or for graphsim's own host. It returns the
// token audience.
func (s *Sim) audienceForScope(r *http.Request, scope string) (string, bool) {
	var resources []string
	for _, f := range strings.Fields(scope) {
		switch f {
		case "openid", "profile", "offline_access":
			continue
		}
		resources = append(resources, f)
	}
	if len(resources) != 1 {
		return "", false
	}
	res, ok := strings.CutSuffix(resources[0], "/.default")
	if !ok {
		return "", false
	}
	res = strings.TrimSuffix(res, "/")
	switch {
	case strings.EqualFold(res, graphResource), strings.EqualFold(res, graphAppID):
		return graphResource, true
	case strings.EqualFold(res, s.host(r)), strings.EqualFold(res, s.URL()):
		return strings.ToLower(res), true
	}
	return "", false
}
