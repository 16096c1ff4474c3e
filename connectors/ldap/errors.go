package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/internal/secret"
)

// Failure codes: stable, machine-readable reasons a connection check (or
// a sync) failed, as Check.code carries them.
const (
	CodeInvalidConfig  = "invalid_config"
	CodeUnreachable    = "unreachable"
	CodeTLSFailed      = "tls_failed"
	CodeNeedsTLS       = "needs_tls"
	CodeFlavorUnknown  = "flavor_unknown"
	CodeCanceled       = "canceled"
	CodeTimeout        = "timeout"
	CodeLDAPError      = "ldap_error"
	CodeServerBusy     = "server_unavailable"
	CodeSizeLimit      = "size_limit_exceeded"
	CodeBaseDNNotFound = "base_dn_not_found"
	CodeBaseDNReferral = "base_dn_referral"
	CodeFilterInvalid  = "filter_invalid"
	CodeMissingAccess  = "missing_read_access"
	// CodeNoUsers is a user_filter that matched no user under base_dn: a
	// sync would read an empty directory.
	CodeNoUsers = "no_users"

	// CodeInvalidCredentials is a bind refused without a reason (OpenLDAP
	// answers so for a wrong password, an unknown DN and a locked
	// account alike).
	CodeInvalidCredentials = "invalid_credentials"
	// Active Directory's reasons for refusing a bind, from the "data
	// <hex>" sub-code of its diagnostic message.
	CodeWrongPassword      = "wrong_password"       // 52e
	CodeUserNotFound       = "user_not_found"       // 525
	CodeLogonHours         = "logon_hours"          // 530
	CodeLogonWorkstation   = "logon_workstation"    // 531
	CodePasswordExpired    = "password_expired"     // 532
	CodeAccountDisabled    = "account_disabled"     // 533
	CodeAccountExpired     = "account_expired"      // 701
	CodeMustChangePassword = "must_change_password" // 773
	CodeAccountLocked      = "account_locked"       // 775
)

// Stage is the step of talking to the directory whose failure is being
// explained: it picks the config key a remedy points at.
type Stage string

// The stages, in the order a connection test runs them.
const (
	StageConnect  Stage = "connect"   // dial, and the TLS handshake of ldaps://
	StageStartTLS Stage = "start_tls" // the StartTLS operation and its handshake
	StageBind     Stage = "bind"
	StageRootDSE  Stage = "root_dse" // reading the rootDSE (flavor detection)
	StageBaseDN   Stage = "base_dn"  // a base search of base_dn
	StageUsers    Stage = "users"    // searching with user_filter
	StageGroups   Stage = "groups"   // searching with group_filter
	StageMembers  Stage = "members"  // reading the member ranges of a group
	StageDisabled Stage = "disabled" // searching with disabled_filter
)

// Failure is a failure explained for an admin: a failed connection
// check, or the error a sync returns.
type Failure struct {
	// Code is a stable machine-readable reason, e.g. "wrong_password".
	Code string
	// Detail says what was found.
	Detail string
	// Remedy says what the admin must change.
	Remedy string
	err    error
	// stage is where it happened ("" before talking to the server), so
	// that TestConnection files it under the right check.
	stage Stage
}

// Error returns the detail and the remedy as sentences.
func (f *Failure) Error() string { return connector.Explain(f.Detail, f.Remedy) }

// Unwrap returns the error explained.
func (f *Failure) Unwrap() error { return f.err }

// Check returns the failure as a failed TestConnection check named name.
func (f *Failure) Check(name string) *connectorv1.Check {
	return &connectorv1.Check{Name: name, Ok: false, Code: f.Code, Detail: f.Detail, Remedy: f.Remedy}
}

// Classify explains an error of stage st in terms of what the admin must
// change. cfg names the server, account and base DN in the texts (nil:
// the texts stay generic). password is secret.Redacted from every text, whatever
// the server or the error said.
func Classify(st Stage, err error, cfg *Config, password string) *Failure {
	if err == nil {
		return nil
	}
	f := classify(st, err, cfg)
	f.err, f.stage = err, st
	f.Detail = redact(f.Detail, password)
	f.Remedy = redact(f.Remedy, password)
	return f
}

// FlavorUnknownFailure explains a rootDSE that DetectFlavor did not
// recognise.
func FlavorUnknownFailure(cfg *Config) *Failure {
	return &Failure{
		Code:   CodeFlavorUnknown,
		Detail: fmt.Sprintf("%s does not say whether it is Active Directory or OpenLDAP (its rootDSE has neither forestFunctionality nor the OpenLDAProotDSE class)", server(cfg)),
		Remedy: `Set flavor = "active_directory" or flavor = "openldap" in the connector's config block.`,
		stage:  StageRootDSE,
	}
}

// MissingReadAccess explains entries that came back without attributes
// the connector needs (e.g. objectGUID or entryUUID): the bind account
// may not read them.
func MissingReadAccess(st Stage, attrs []string, cfg *Config) *Failure {
	return &Failure{
		Code:   CodeMissingAccess,
		Detail: fmt.Sprintf("the %s returned lack %s: %s may not read %s", stageObjects(st), plural(len(attrs), "the attribute", "the attributes"), account(cfg), strings.Join(attrs, ", ")),
		Remedy: fmt.Sprintf("Grant %s read access to %s of users and groups under base_dn (Active Directory: Read permission via Delegate Control; OpenLDAP: an olcAccess rule \"by dn=... read\"), or set the matching attr_* key if this schema keeps them elsewhere.", account(cfg), strings.Join(attrs, ", ")),
		stage:  st,
	}
}

func classify(st Stage, err error, cfg *Config) *Failure {
	if errors.Is(err, context.Canceled) {
		return &Failure{Code: CodeCanceled, Detail: "stopped: " + err.Error()}
	}
	var le *goldap.Error
	isLDAP := errors.As(err, &le)
	if isLDAP && le.ResultCode < goldap.ErrorNetwork {
		return explainResult(st, le, cfg)
	}
	if isLDAP && le.ResultCode == goldap.ErrorFilterCompile {
		return filterFailure(st, cfg, diagnostic(le))
	}
	if isTLSError(err) || (st == StageStartTLS && isLDAP) {
		return tlsFailure(st, err, cfg)
	}
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		if st == StageConnect {
			return unreachable(err, cfg)
		}
		return &Failure{
			Code:   CodeTimeout,
			Detail: fmt.Sprintf("%s did not answer in time (%s)", server(cfg), oneLine(err)),
			Remedy: "Check the server's load and the network in between; if the directory is large and slow, raise timeout (seconds).",
		}
	}
	if isNetworkError(err) || (isLDAP && le.ResultCode == goldap.ErrorNetwork) {
		return unreachable(err, cfg)
	}
	return &Failure{Code: CodeLDAPError, Detail: oneLine(err)}
}

// explainResult explains an LDAP result code the server answered with.
func explainResult(st Stage, le *goldap.Error, cfg *Config) *Failure {
	diag := diagnostic(le)
	withDiag := func(s string) string {
		if diag == "" {
			return s
		}
		return s + " (" + diag + ")"
	}
	switch le.ResultCode {
	case goldap.LDAPResultInvalidCredentials:
		return bindFailure(diag, cfg)
	case goldap.LDAPResultStrongAuthRequired, goldap.LDAPResultConfidentialityRequired:
		return &Failure{
			Code:   CodeNeedsTLS,
			Detail: withDiag(fmt.Sprintf("%s refuses to accept a password over an unencrypted connection", server(cfg))),
			Remedy: "Use TLS: set url to ldaps://host (port 636), or keep ldap:// and set start_tls = true; if the server's certificate is not from a public CA, set ca_file to its CA.",
		}
	case goldap.LDAPResultNoSuchObject:
		detail := fmt.Sprintf("base_dn %q does not exist on %s", baseDN(cfg), server(cfg))
		if le.MatchedDN != "" {
			detail += fmt.Sprintf("; the deepest part that exists is %q", le.MatchedDN)
		}
		return &Failure{
			Code:   CodeBaseDNNotFound,
			Detail: withDiag(detail),
			Remedy: "Set base_dn to an existing entry, e.g. the domain's root (DC=corp,DC=example,DC=com) or the OU holding the users; the server's rootDSE lists its naming contexts (namingContexts).",
		}
	case goldap.LDAPResultReferral:
		return &Failure{
			Code:   CodeBaseDNReferral,
			Detail: withDiag(fmt.Sprintf("%s holds no copy of base_dn %q and referred the search to another server", server(cfg), baseDN(cfg))),
			Remedy: "Point url at a server (domain controller) of the domain or naming context holding base_dn.",
		}
	case goldap.LDAPResultFilterError:
		return filterFailure(st, cfg, diag)
	case goldap.LDAPResultInsufficientAccessRights:
		return &Failure{
			Code:   CodeMissingAccess,
			Detail: withDiag(fmt.Sprintf("%s may not read the %s under base_dn %q", account(cfg), stageObjects(st), baseDN(cfg))),
			Remedy: fmt.Sprintf("Grant %s read access to users and groups under base_dn (Active Directory: any domain user may read them unless the OU's permissions were changed; OpenLDAP: an olcAccess rule giving it read), or bind as an account that has it.", account(cfg)),
		}
	case goldap.LDAPResultSizeLimitExceeded, goldap.LDAPResultAdminLimitExceeded:
		return &Failure{
			Code:   CodeSizeLimit,
			Detail: withDiag(fmt.Sprintf("%s stopped the search at its size limit", server(cfg))),
			Remedy: "Lower page_size below the server's limit, or raise the limit for bind_dn (OpenLDAP: olcLimits with size.prtotal=unlimited for the account; Active Directory: MaxPageSize).",
		}
	case goldap.LDAPResultBusy, goldap.LDAPResultUnavailable:
		return &Failure{
			Code:   CodeServerBusy,
			Detail: withDiag(fmt.Sprintf("%s is busy or unavailable", server(cfg))),
			Remedy: "Try again later; if it persists, check the directory server's health or point url at another server.",
		}
	case goldap.LDAPResultTimeLimitExceeded, goldap.LDAPResultTimeout:
		return &Failure{
			Code:   CodeTimeout,
			Detail: withDiag(fmt.Sprintf("%s did not answer in time", server(cfg))),
			Remedy: "Check the server's load; if the directory is large and slow, raise timeout (seconds) or narrow base_dn.",
		}
	}
	if st == StageStartTLS {
		return tlsFailure(st, le, cfg)
	}
	return &Failure{Code: CodeLDAPError, Detail: oneLine(le)}
}

// adBindReasons maps Active Directory's bind sub-codes (the "data <hex>"
// of its diagnostic message) to a code, what it means and what to do.
var adBindReasons = map[string]struct{ code, detail, remedy string }{
	"52e": {CodeWrongPassword, "wrong bind_password or bind_dn (Active Directory sub-code 52e, which it also answers for an account that does not exist)",
		"Check bind_password (or the content of bind_password_file) and bind_dn; a DN must name the account exactly, or use its user@domain form."},
	"525": {CodeUserNotFound, "bind_dn names no account (Active Directory sub-code 525)",
		"Set bind_dn to an existing account: its DN, user@domain or DOMAIN\\user."},
	"530": {CodeLogonHours, "the account may not sign in at this time of day (Active Directory sub-code 530)",
		"In Active Directory Users and Computers, Account > Logon Hours of the account: permit all hours."},
	"531": {CodeLogonWorkstation, "the account may not sign in from this machine (Active Directory sub-code 531)",
		"In the account's properties, Account > Log On To: allow all computers, or add this one."},
	"532": {CodePasswordExpired, "the account's password has expired (Active Directory sub-code 532)",
		"Set a new password for the account and put it in bind_password or bind_password_file; consider 'Password never expires' for this service account."},
	"533": {CodeAccountDisabled, "the account is disabled (Active Directory sub-code 533)",
		"Enable the account in Active Directory, or bind as another one."},
	"701": {CodeAccountExpired, "the account has expired (Active Directory sub-code 701)",
		"Extend the account's expiry date (Account > Account expires: Never), or bind as another one."},
	"773": {CodeMustChangePassword, "the account must change its password before it may sign in (Active Directory sub-code 773)",
		"Set a new password for the account (clearing 'User must change password at next logon') and put it in bind_password or bind_password_file."},
	"775": {CodeAccountLocked, "the account is locked out after too many wrong passwords (Active Directory sub-code 775)",
		"Unlock the account in Active Directory, then check that bind_password is right so that it does not lock again; stop other tools that sign in with an old password."},
}

// bindFailure explains result 49 (invalid credentials) by Active
// Directory's sub-code when the diagnostic has one.
func bindFailure(diag string, cfg *Config) *Failure {
	sub := ADBindSubCode(diag)
	if r, ok := adBindReasons[sub]; ok {
		return &Failure{Code: r.code, Detail: fmt.Sprintf("binding as %s failed: %s", account(cfg), r.detail), Remedy: r.remedy}
	}
	detail := fmt.Sprintf("%s refused to bind as %s: invalid credentials", server(cfg), account(cfg))
	if sub != "" {
		detail += " (Active Directory sub-code " + sub + ")"
	} else if diag != "" {
		detail += " (" + diag + ")"
	}
	return &Failure{
		Code:   CodeInvalidCredentials,
		Detail: detail,
		Remedy: "Check bind_dn (the full DN of the account) and bind_password (or the content of bind_password_file); OpenLDAP also answers so for a locked account (pwdAccountLockedTime set).",
	}
}

// ADBindSubCode returns the sub-code of an Active Directory bind
// diagnostic, lowercase hex: "52e" from "80090308: LdapErr: DSID-0C0903A9,
// comment: AcceptSecurityContext error, data 52e, v1db1"; "" when there is
// none.
func ADBindSubCode(diag string) string {
	i := strings.Index(diag, "data ")
	if i < 0 {
		return ""
	}
	s := diag[i+len("data "):]
	n := 0
	for n < len(s) && n < 8 && isHexDigit(s[n]) {
		n++
	}
	if n == 0 || (n < len(s) && s[n] != ',' && s[n] != ' ') {
		return ""
	}
	return strings.ToLower(s[:n])
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// filterFailure names the filter key of the stage.
func filterFailure(st Stage, cfg *Config, diag string) *Failure {
	key, filter := KeyUserFilter, ""
	switch st {
	case StageGroups, StageMembers:
		key = KeyGroupFilter
	case StageDisabled:
		key = KeyDisabledFilter
	}
	if cfg != nil { // the configured filter; a default one is the flavor's
		switch key {
		case KeyUserFilter:
			filter = cfg.userFilter
		case KeyGroupFilter:
			filter = cfg.groupFilter
		default:
			filter = cfg.DisabledFilter
		}
	}
	detail := key + " (the flavor's default) is not a filter the server accepts"
	if filter != "" {
		detail = fmt.Sprintf("%s %q is not a filter the server accepts", key, filter)
	}
	if diag != "" {
		detail += ": " + diag
	}
	return &Failure{
		Code:   CodeFilterInvalid,
		Detail: detail,
		Remedy: fmt.Sprintf("Fix %s: an LDAP filter in parentheses, e.g. (&(objectClass=person)(mail=*)), with balanced parentheses and * ( ) \\ in values escaped as \\2a \\28 \\29 \\5c.", key),
	}
}

func tlsFailure(st Stage, err error, cfg *Config) *Failure {
	detail := fmt.Sprintf("the TLS connection to %s failed: %s", server(cfg), transportText(err))
	remedy := "If the server's certificate is issued by a private CA (e.g. the domain's enterprise CA), set ca_file to a PEM file of that CA's certificate; check that the host in url is a name the certificate lists (its subject alternative names)."
	var rec tls.RecordHeaderError
	switch {
	case errors.As(err, &rec):
		remedy = "The port in url does not speak TLS: use ldaps:// with the TLS port (636), or ldap:// (389) with start_tls = true."
	case st == StageStartTLS && !isTLSError(err):
		detail = fmt.Sprintf("%s refused StartTLS: %s", server(cfg), transportText(err))
		remedy = "Enable TLS on the directory server (a certificate and key), or use ldaps:// if it listens for TLS on port 636; then set ca_file if its CA is private."
	}
	return &Failure{Code: CodeTLSFailed, Detail: detail, Remedy: remedy}
}

func unreachable(err error, cfg *Config) *Failure {
	return &Failure{
		Code:   CodeUnreachable,
		Detail: fmt.Sprintf("cannot reach %s: %s", server(cfg), transportText(err)),
		Remedy: "Check the host and port in url, DNS, and that firewalls let this machine connect to it (LDAP uses port 389, LDAPS 636).",
	}
}

// isTLSError reports certificate and handshake failures, through the
// error chain or, where go-ldap kept only the text (StartTLS), the
// message.
func isTLSError(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
		record   tls.RecordHeaderError
		alert    tls.AlertError
	)
	if errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &record) || errors.As(err, &alert) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"x509: ", "tls: ", "TLS handshake failed"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// isNetworkError reports DNS and connection failures.
func isNetworkError(err error) bool {
	var (
		dnsErr *net.DNSError
		opErr  *net.OpError
	)
	if errors.As(err, &dnsErr) || errors.As(err, &opErr) || errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"no such host", "connection refused", "network is unreachable", "connection reset", "dial tcp", "connection closed"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func isTimeout(err error) bool {
	var ne net.Error
	return (errors.As(err, &ne) && ne.Timeout()) || strings.Contains(err.Error(), "i/o timeout")
}

// diagnostic returns the server's diagnostic message of an LDAP error.
func diagnostic(le *goldap.Error) string {
	if le.Err == nil {
		return ""
	}
	return strings.TrimPrefix(oneLine(le.Err), "ldap: ")
}

// transportText returns the text of a network or TLS error without
// go-ldap's "LDAP Result Code 200 "Network Error":" wrapping.
func transportText(err error) string {
	var le *goldap.Error
	if errors.As(err, &le) && le.Err != nil {
		return strings.TrimPrefix(oneLine(le.Err), "ldap: ")
	}
	return oneLine(err)
}

// oneLine returns err's text on one line, as valid UTF-8 of bounded size.
func oneLine(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	return clip(s, 300)
}

func server(cfg *Config) string {
	if cfg == nil || cfg.URL == "" {
		return "the directory server"
	}
	if u, err := url.Parse(cfg.URL); err == nil && u.Host != "" {
		return u.Scheme + "://" + u.Host
	}
	return "the directory server"
}

func account(cfg *Config) string {
	if cfg == nil || cfg.BindDN == "" {
		return "the bind account"
	}
	return fmt.Sprintf("bind_dn %q", cfg.BindDN)
}

func baseDN(cfg *Config) string {
	if cfg == nil {
		return ""
	}
	return cfg.BaseDN
}

func stageObjects(st Stage) string {
	switch st {
	case StageUsers, StageDisabled:
		return "users"
	case StageGroups:
		return "groups"
	case StageMembers:
		return "group members"
	case StageRootDSE:
		return "server's rootDSE"
	}
	return "entries"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// redact removes the password from s. Passwords shorter than four
// characters are not searched for: they would match ordinary words.
func redact(s, password string) string {
	if len(password) < 4 {
		return s
	}
	return strings.ReplaceAll(s, password, secret.Redacted)
}
