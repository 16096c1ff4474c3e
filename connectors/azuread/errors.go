package azuread

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/dirsync/dirsync/connectors/connector"
	"github.com/dirsync/dirsync/internal/secret"
	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
)

// Problem codes: stable, machine-readable reasons a check or sync failed.
const (
	CodeInvalidConfig             = "invalid_config"
	CodeTenantNotFound            = "tenant_not_found"
	CodeClientIDNotFound          = "client_id_not_found"
	CodeInvalidClientSecret       = "invalid_client_secret"
	CodeClientSecretExpired       = "client_secret_expired"
	CodeInvalidScope              = "invalid_scope"
	CodeAuthenticationFailed      = "authentication_failed"
	CodeTLSUntrusted              = "tls_untrusted"
	CodeUnreachable               = "unreachable"
	CodeMissingUserReadAll        = "missing_permission_user_read_all"
	CodeMissingGroupMemberReadAll = "missing_permission_groupmember_read_all"
	CodeTokenRejected             = "token_rejected"
	CodeThrottled                 = "throttled"
	CodeGraphUnavailable          = "graph_unavailable"
	CodeGraphError                = "graph_error"
	CodeCanceled                  = "canceled"
	CodeResponseTooLarge          = "response_too_large"
	CodeResponseTooDeep           = "response_too_deep"
	// CodeMissingMailboxSettingsRead: the app may not read mailboxSettings,
	// so shared, room and equipment mailboxes cannot be told apart.
	CodeMissingMailboxSettingsRead = "missing_permission_mailboxsettings_read"
)

// stage is the step whose failure is being explained; it picks the host
// named for network errors and the permission named for 403s.
type stage int

const (
	stageToken stage = iota
	stageUsers
	stageGroups
	stageMembers
	stageMailboxes
)

// Problem is a failure explained for an admin. It is the error Sync
// returns (wrapped) and the content of a failed TestConnection check.
type Problem struct {
	// Code is a stable machine-readable reason, e.g. "invalid_client_secret".
	Code string
	// Detail says what was found.
	Detail string
	// Remedy says what the admin must change.
	Remedy string
	err    error
}

// Error returns the detail and the remedy as sentences: "<detail>. To
// fix: <remedy>". The detail is a phrase without a final period; one is
// added only when it lacks one, so that the remedy never runs on from it.
func (p *Problem) Error() string { return connector.Explain(p.Detail, p.Remedy) }

// Unwrap returns the underlying error: a *GraphError or *EntraError when
// the service answered, else the transport or context error.
func (p *Problem) Unwrap() error { return p.err }

// GraphError is a failed Microsoft Graph response.
type GraphError struct {
	// Status is the HTTP status code.
	Status int
	// Code is Graph's error code, e.g. "Authorization_RequestDenied".
	Code string
	// Message is Graph's error message.
	Message string
	// RequestID is Graph's request-id, for Microsoft support.
	RequestID string
}

// Error formats the error as "Graph 403 Code: Message".
func (e *GraphError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Graph %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" [request-id " + e.RequestID + "]")
	}
	return b.String()
}

// asGraphError extracts a Graph error response from an SDK error. The
// SDK's ODataError must not be printed itself: its Error method panics
// when the body had no message.
func asGraphError(err error) (*GraphError, bool) {
	var own *GraphError
	if errors.As(err, &own) {
		return own, true
	}
	var odata *odataerrors.ODataError
	if errors.As(err, &odata) {
		ge := &GraphError{Status: odata.GetStatusCode()}
		if main := odata.GetErrorEscaped(); main != nil {
			ge.Code = deref(main.GetCode())
			ge.Message = deref(main.GetMessage())
			if inner := main.GetInnerError(); inner != nil {
				ge.RequestID = deref(inner.GetRequestId())
			}
		}
		return ge, true
	}
	var api *abs.ApiError
	if errors.As(err, &api) {
		return &GraphError{Status: api.GetStatusCode(), Message: api.Message}, true
	}
	return nil, false
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// EntraError is a failed response of the Entra token or metadata endpoint.
type EntraError struct {
	// Status is the HTTP status code, 0 when unknown.
	Status int
	// AADSTS is the numeric AADSTS code, e.g. 7000215, 0 when unknown.
	AADSTS int
	// Code is the OAuth error, e.g. "invalid_client".
	Code string
	// Description is the first line of error_description.
	Description string
}

// Error formats the error as "Entra AADSTS7000215 (invalid_client): ...".
func (e *EntraError) Error() string {
	var b strings.Builder
	b.WriteString("Entra")
	if e.Status != 0 {
		fmt.Fprintf(&b, " %d", e.Status)
	}
	if e.AADSTS != 0 && !strings.HasPrefix(e.Description, "AADSTS") {
		fmt.Fprintf(&b, " AADSTS%d", e.AADSTS)
	}
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Description != "" {
		b.WriteString(": " + e.Description)
	}
	return b.String()
}

// asEntraError extracts Entra's error body from an azidentity error.
func asEntraError(err error) (*EntraError, bool) {
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) && afe.RawResponse != nil {
		ee := &EntraError{Status: afe.RawResponse.StatusCode}
		if body, rerr := runtime.Payload(afe.RawResponse); rerr == nil && len(body) > 0 {
			var v struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
				Codes       []int  `json:"error_codes"`
			}
			if json.Unmarshal(body, &v) == nil {
				ee.Code = v.Error
				ee.Description = firstLine(v.Description)
				if len(v.Codes) > 0 {
					ee.AADSTS = v.Codes[0]
				}
			}
		}
		if ee.AADSTS == 0 {
			ee.AADSTS = aadstsCode(ee.Description)
		}
		if ee.AADSTS != 0 || ee.Code != "" {
			return ee, true
		}
	}
	// Last resort: the AADSTS code in the error text.
	if code := aadstsCode(err.Error()); code != 0 {
		return &EntraError{AADSTS: code, Description: fmt.Sprintf("AADSTS%d", code)}, true
	}
	return nil, false
}

// aadstsCode returns the number of the first "AADSTS<digits>" in s, or 0.
func aadstsCode(s string) int {
	for {
		i := strings.Index(s, "AADSTS")
		if i < 0 {
			return 0
		}
		s = s[i+len("AADSTS"):]
		j := 0
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j > 0 {
			n, _ := strconv.Atoi(s[:j])
			return n
		}
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// isTLSError reports certificate verification failures, through the error
// chain or, for azidentity errors that keep only the text, the message.
func isTLSError(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
	)
	if errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "x509: ") || strings.Contains(msg, "tls: failed to verify certificate")
}

// isNetworkError reports DNS and connection failures.
func isNetworkError(err error) bool {
	var (
		dnsErr *net.DNSError
		opErr  *net.OpError
	)
	if errors.As(err, &dnsErr) || errors.As(err, &opErr) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"no such host", "connection refused", "i/o timeout", "network is unreachable", "connection reset", "server misbehaving", "dial tcp", "Client.Timeout", "TLS handshake timeout"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// transportDetail returns the innermost meaningful line of a transport
// error, e.g. "dial tcp: lookup x: no such host".
func transportDetail(err error) string {
	msg := strings.TrimSpace(err.Error())
	lines := strings.Split(msg, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if i := strings.Index(l, "To troubleshoot, visit"); i >= 0 {
			l = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(l[:i]), "."))
		}
		if l == "" || strings.HasPrefix(l, "---") {
			continue
		}
		return l
	}
	return msg
}

// explain turns an error of a stage into a Problem an admin can act on.
// secret is secret.Redacted from every text, whatever the error says.
func explain(err error, st stage, cfg *Config, secret string) *Problem {
	p := classify(err, st, cfg, secret)
	if p.err == nil {
		p.err = err
	}
	p.Detail = redact(p.Detail, secret)
	p.Remedy = redact(p.Remedy, secret)
	return p
}

func classify(err error, st stage, cfg *Config, secret string) *Problem {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &Problem{Code: CodeCanceled, Detail: "stopped: " + err.Error()}
	}
	host := cfg.graphHost()
	if st == stageToken {
		host = cfg.authorityHostName()
	}
	var rbe *RetryBudgetError
	if errors.As(err, &rbe) {
		return explainBudget(rbe, st, cfg, secret)
	}
	var le *ResponseLimitError
	if errors.As(err, &le) {
		return explainLimit(le.Error(), le.MaxDepth > 0, le.MaxBytes, st)
	}
	// azidentity keeps only the text of a token request's failure.
	if msg := err.Error(); strings.Contains(msg, limitSizeMark) || strings.Contains(msg, limitDepthMark) {
		return explainLimit(transportDetail(err), strings.Contains(msg, limitDepthMark), cfg.maxResponseBytes(), st)
	}
	if ee, ok := asEntraError(err); ok {
		p := explainEntra(ee, cfg, secret)
		p.err = ee
		return p
	}
	if ge, ok := asGraphError(err); ok {
		p := explainGraph(ge, st, cfg)
		p.err = ge
		return p
	}
	if isTLSError(err) {
		return &Problem{
			Code:   CodeTLSUntrusted,
			Detail: fmt.Sprintf("the TLS certificate of %s is not trusted: %s", host, transportDetail(err)),
			Remedy: fmt.Sprintf("If a TLS-inspecting proxy sits between dirsync and %s, set ca_file to a PEM file with the proxy's CA certificate; otherwise check that %s is the right host.", host, keyOfStage(st)),
		}
	}
	if isNetworkError(err) {
		return &Problem{
			Code:   CodeUnreachable,
			Detail: fmt.Sprintf("cannot reach %s: %s", host, transportDetail(err)),
			Remedy: fmt.Sprintf("Check %s and DNS, and that firewalls and proxies let this machine connect to https://%s.", keyOfStage(st), host),
		}
	}
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) {
		return &Problem{
			Code:   CodeAuthenticationFailed,
			Detail: "token request failed: " + transportDetail(err),
			Remedy: "Check tenant, client_id, the client secret and authority_host.",
		}
	}
	return &Problem{Code: CodeGraphError, Detail: transportDetail(err)}
}

// explainBudget explains a request that failed until retry_budget was
// spent: Graph's last answer (its code and message), for how long it was
// retried, and what to do.
func explainBudget(e *RetryBudgetError, st stage, cfg *Config, secret string) *Problem {
	retried := e.retried()
	resume := "Nothing was changed: the next sync starts again from the last good cursor."
	raise := fmt.Sprintf("If such outages are short but longer than %s, raise retry_budget (a Go duration, e.g. \"30m\") so that the connector waits longer.", e.Budget)
	if ge, ok := asGraphError(e.Err); ok {
		p := &Problem{err: e}
		switch {
		case ge.Status == 429:
			p.Code = CodeThrottled
			p.Detail = "Microsoft Graph kept throttling this app (" + ge.Error() + "), " + retried
			p.Remedy = resume + " Graph throttles an app that sends too many requests to the tenant: sync less often, or stop other tools that use the same app registration. " + raise
		case ge.Status >= 500:
			p.Code = CodeGraphUnavailable
			p.Detail = "Microsoft Graph kept failing (" + ge.Error() + "), " + retried
			p.Remedy = resume + " Check Microsoft 365 service health (admin center > Health > Service health) for an incident. " + raise
		default:
			inner := explainGraph(ge, st, cfg)
			p.Code = inner.Code
			p.Detail = inner.Detail + ", " + retried
			p.Remedy = inner.Remedy
		}
		return p
	}
	inner := classify(e.Err, st, cfg, secret)
	if inner.Code == CodeGraphError {
		inner.Code = CodeUnreachable
	}
	remedy := resume
	for _, r := range []string{inner.Remedy, raise} {
		if r != "" {
			remedy += " " + r
		}
	}
	return &Problem{Code: inner.Code, Detail: inner.Detail + ", " + retried, Remedy: remedy, err: e}
}

// explainLimit explains an answer refused by the response limits: its
// detail, whether the JSON nested too deep (else it was too large) and
// the size limit. Neither is Microsoft's normal behaviour, so the first
// thing to check is what answered.
func explainLimit(detail string, tooDeep bool, maxBytes int64, st stage) *Problem {
	resume := "Nothing was changed: the next sync starts again from the last good cursor."
	check := fmt.Sprintf("that %s points at Microsoft's service and that no proxy in between rewrites its answers.", keyOfStage(st))
	if tooDeep {
		return &Problem{Code: CodeResponseTooDeep, Detail: detail,
			Remedy: "Check " + check + " Microsoft's JSON nests only a few levels deep; this limit is not configurable. " + resume}
	}
	return &Problem{Code: CodeResponseTooLarge, Detail: detail,
		Remedy: fmt.Sprintf("Graph's pages are normally about 1 MiB. If this tenant's really are larger, raise max_response_mb in the connector's config block (now %s, at most %d MiB); if not, check %s %s",
			formatMiB(maxBytes), maxMaxResponseMB, check, resume)}
}

// attempts says "1 attempt" or "n attempts".
func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

func keyOfStage(st stage) string {
	if st == stageToken {
		return KeyAuthorityHost
	}
	return KeyGraphURL
}

func explainEntra(ee *EntraError, cfg *Config, secret string) *Problem {
	detail := ee.Error()
	switch ee.AADSTS {
	case 90002, 900023:
		return &Problem{
			Code:   CodeTenantNotFound,
			Detail: fmt.Sprintf("tenant %q was not found at %s (%s)", cfg.Tenant, cfg.AuthorityHost, detail),
			Remedy: "Set tenant to the tenant's primary domain (e.g. contoso.onmicrosoft.com) or its Directory (tenant) ID, both shown in the Entra admin center > Overview; and check that authority_host is the tenant's cloud (national clouds have their own).",
		}
	case 700016:
		return &Problem{
			Code:   CodeClientIDNotFound,
			Detail: fmt.Sprintf("no application with client ID %s in tenant %s (%s)", cfg.ClientID, cfg.Tenant, detail),
			Remedy: "Copy the Application (client) ID from the app registration's Overview page into client_id, and check that tenant is the tenant the app is registered in.",
		}
	case 7000215:
		remedy := "Set client_secret (or the content of client_secret_file) to the secret's Value, not its Secret ID. The Value is shown only once, when the secret is created: if it is lost, create a new client secret under the app registration's Certificates & secrets."
		if isGUID(strings.TrimSpace(secret)) {
			remedy = "The configured secret looks like a Secret ID (a GUID). " + remedy
		}
		return &Problem{Code: CodeInvalidClientSecret, Detail: "the client secret was rejected (" + detail + ")", Remedy: remedy}
	case 7000222:
		return &Problem{
			Code:   CodeClientSecretExpired,
			Detail: "the client secret has expired (" + detail + ")",
			Remedy: "Create a new client secret under the app registration's Certificates & secrets and put its Value in client_secret or client_secret_file.",
		}
	case 70011:
		return &Problem{
			Code:   CodeInvalidScope,
			Detail: fmt.Sprintf("Entra rejected the scope %s (%s)", cfg.Scope(), detail),
			Remedy: "Check graph_url: it must be the Microsoft Graph endpoint of the tenant's cloud (e.g. https://graph.microsoft.com/v1.0), whose host gives the token scope.",
		}
	}
	return &Problem{
		Code:   CodeAuthenticationFailed,
		Detail: "token request failed: " + detail,
		Remedy: "Look up the AADSTS code at https://login.microsoftonline.com/error and check tenant, client_id and the client secret.",
	}
}

func explainGraph(ge *GraphError, st stage, cfg *Config) *Problem {
	detail := ge.Error()
	switch {
	case ge.Status == 401:
		return &Problem{
			Code:   CodeTokenRejected,
			Detail: "Microsoft Graph rejected the token (" + detail + ")",
			Remedy: fmt.Sprintf("Check that authority_host (%s) and graph_url (%s) belong to the same cloud, and that the system clock is correct.", cfg.AuthorityHost, cfg.GraphURL),
		}
	case ge.Status == 403 && st == stageUsers:
		return &Problem{
			Code:   CodeMissingUserReadAll,
			Detail: "the app may not read users (" + detail + ")",
			Remedy: consentRemedy("User.Read.All"),
		}
	case ge.Status == 403 && (st == stageGroups || st == stageMembers):
		return &Problem{
			Code:   CodeMissingGroupMemberReadAll,
			Detail: "the app may not read groups and their members (" + detail + ")",
			Remedy: consentRemedy("GroupMember.Read.All"),
		}
	case ge.Status == 403 && st == stageMailboxes:
		return &Problem{
			Code:   CodeMissingMailboxSettingsRead,
			Detail: "the app may not read mailbox settings, so shared, room and equipment mailboxes cannot be told apart from people's (" + detail + ")",
			Remedy: consentRemedy("MailboxSettings.Read"),
		}
	case ge.Status == 429:
		return &Problem{
			Code:   CodeThrottled,
			Detail: "Microsoft Graph is throttling this app (" + detail + ")",
			Remedy: "Wait and retry later; if it persists, sync less often.",
		}
	}
	return &Problem{Code: CodeGraphError, Detail: detail}
}

func consentRemedy(permission string) string {
	return "In the Entra admin center, open App registrations > this app > API permissions, add the Microsoft Graph application permission " + permission +
		" (Application, not Delegated), then select 'Grant admin consent'. Consent can take up to 4 hours to take effect: tokens issued before it keep their old roles."
}

// redact removes the secret from s.
func redact(s, value string) string {
	if len(value) < 4 {
		return s
	}
	return strings.ReplaceAll(s, value, secret.Redacted)
}
