package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
)

// adDiag is Active Directory's diagnostic of a refused bind, with sub-code.
func adDiag(sub string) error {
	return fmt.Errorf("80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data %s, v1db1", sub)
}

func netErr(err error) error { return goldap.NewError(goldap.ErrorNetwork, err) }

// allCodes lists every failure code the classification can give.
var allCodes = []string{
	CodeUnreachable, CodeTLSFailed, CodeNeedsTLS, CodeFlavorUnknown, CodeCanceled, CodeTimeout, CodeLDAPError,
	CodeServerBusy, CodeSizeLimit, CodeBaseDNNotFound, CodeBaseDNReferral, CodeFilterInvalid, CodeMissingAccess,
	CodeInvalidCredentials, CodeWrongPassword, CodeUserNotFound, CodeLogonHours, CodeLogonWorkstation,
	CodePasswordExpired, CodeAccountDisabled, CodeAccountExpired, CodeMustChangePassword, CodeAccountLocked,
}

type classifyCase struct {
	name   string
	stage  Stage
	err    error
	code   string
	detail string // part of the detail
	remedy string // part of the remedy
}

func classifyCases() []classifyCase {
	_, filterErr := goldap.CompileFilter("(&(objectClass=user)")
	mismatch := x509.HostnameError{Certificate: &x509.Certificate{DNSNames: []string{"dc2.corp.example.com"}}, Host: "dc1.corp.example.com"}
	return []classifyCase{
		{"connection refused", StageConnect, netErr(&net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}),
			CodeUnreachable, "connection refused", "port"},
		{"no such host", StageConnect, netErr(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "dc1.corp.example.com", IsNotFound: true}}),
			CodeUnreachable, "no such host", "DNS"},
		{"dial timeout", StageConnect, netErr(&net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}),
			CodeUnreachable, "cannot reach ldaps://dc1.corp.example.com", "firewalls"},
		{"connection closed", StageUsers, goldap.NewError(goldap.ErrorNetwork, errors.New("ldap: connection closed")),
			CodeUnreachable, "connection closed", "url"},
		{"unknown authority", StageConnect, netErr(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}),
			CodeTLSFailed, "unknown authority", "ca_file"},
		{"hostname mismatch", StageConnect, netErr(&tls.CertificateVerificationError{Err: mismatch}),
			CodeTLSFailed, "dc1.corp.example.com", "ca_file"},
		{"plain port", StageConnect, netErr(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}),
			CodeTLSFailed, "TLS", "ldaps://"},
		{"StartTLS handshake", StageStartTLS, netErr(errors.New("TLS handshake failed (remote error: tls: handshake failure)")),
			CodeTLSFailed, "handshake failure", "ca_file"},
		{"StartTLS refused", StageStartTLS, goldap.NewError(goldap.LDAPResultProtocolError, errors.New("unsupported extended operation")),
			CodeTLSFailed, "refused StartTLS", "Enable TLS"},
		{"AD 52e", StageBind, goldap.NewError(49, adDiag("52e")), CodeWrongPassword, "wrong bind_password or bind_dn", "bind_password"},
		{"AD 525", StageBind, goldap.NewError(49, adDiag("525")), CodeUserNotFound, "names no account", "bind_dn"},
		{"AD 530", StageBind, goldap.NewError(49, adDiag("530")), CodeLogonHours, "time of day", "Logon Hours"},
		{"AD 531", StageBind, goldap.NewError(49, adDiag("531")), CodeLogonWorkstation, "this machine", "Log On To"},
		{"AD 532", StageBind, goldap.NewError(49, adDiag("532")), CodePasswordExpired, "expired", "new password"},
		{"AD 533", StageBind, goldap.NewError(49, adDiag("533")), CodeAccountDisabled, "disabled", "Enable the account"},
		{"AD 701", StageBind, goldap.NewError(49, adDiag("701")), CodeAccountExpired, "expired", "expiry"},
		{"AD 773", StageBind, goldap.NewError(49, adDiag("773")), CodeMustChangePassword, "must change", "new password"},
		{"AD 775", StageBind, goldap.NewError(49, adDiag("775")), CodeAccountLocked, "locked", "Unlock"},
		{"AD unknown sub-code", StageBind, goldap.NewError(49, adDiag("52f")), CodeInvalidCredentials, "sub-code 52f", "bind_dn"},
		{"OpenLDAP 49", StageBind, goldap.NewError(49, errors.New("")), CodeInvalidCredentials, "invalid credentials", "bind_password"},
		{"strong auth required", StageBind, goldap.NewError(8, errors.New("BindSimple: Transport encryption required.")),
			CodeNeedsTLS, "Transport encryption required", "start_tls"},
		{"confidentiality required", StageBind, goldap.NewError(13, errors.New("TLS confidentiality required")),
			CodeNeedsTLS, "unencrypted", "ldaps://"},
		{"base DN not found", StageBaseDN, &goldap.Error{ResultCode: 32, MatchedDN: "DC=corp,DC=example,DC=com",
			Err: errors.New("0000208D: NameErr: DSID-03100241, problem 2001 (NO_OBJECT)")}, CodeBaseDNNotFound, "deepest part that exists is \"DC=corp,DC=example,DC=com\"", "base_dn"},
		{"referral", StageUsers, goldap.NewError(10, errors.New("0000202B: RefErr: DSID-0310082F")), CodeBaseDNReferral, "referred", "url"},
		{"user filter compile", StageUsers, filterErr, CodeFilterInvalid, "user_filter", "user_filter"},
		{"group filter refused", StageGroups, goldap.NewError(87, errors.New("bad filter")), CodeFilterInvalid, "group_filter", "group_filter"},
		{"disabled filter refused", StageDisabled, goldap.NewError(87, errors.New("")), CodeFilterInvalid, "disabled_filter", "disabled_filter"},
		{"insufficient access", StageUsers, goldap.NewError(50, errors.New("00002098: SecErr")), CodeMissingAccess, "may not read the users", "read access"},
		{"size limit", StageUsers, goldap.NewError(4, errors.New("")), CodeSizeLimit, "size limit", "page_size"},
		{"busy", StageBind, goldap.NewError(51, errors.New("")), CodeServerBusy, "busy", "later"},
		{"client timeout", StageUsers, goldap.NewError(goldap.LDAPResultTimeout, errors.New("ldap: connection timed out")), CodeTimeout, "in time", "timeout"},
		{"deadline", StageGroups, fmt.Errorf("reading groups: %w", context.DeadlineExceeded), CodeTimeout, "in time", "timeout"},
		{"canceled", StageUsers, context.Canceled, CodeCanceled, "stopped", ""},
		{"other result", StageUsers, goldap.NewError(53, errors.New("will not")), CodeLDAPError, "will not", ""},
	}
}

func testConfig() *Config {
	return &Config{
		URL: "ldaps://dc1.corp.example.com", BindDN: "CN=dirsync,OU=Service Accounts,DC=corp,DC=example,DC=com",
		BaseDN: "OU=Staff,DC=corp,DC=example,DC=com", DisabledFilter: DefaultDisabledFilter,
	}
}

func TestClassify(t *testing.T) {
	cfg := testConfig()
	for _, tt := range classifyCases() {
		t.Run(tt.name, func(t *testing.T) {
			f := Classify(tt.stage, tt.err, cfg, "")
			if f.Code != tt.code {
				t.Fatalf("code %q, want %q (detail %q)", f.Code, tt.code, f.Detail)
			}
			if !strings.Contains(f.Detail, tt.detail) || !strings.Contains(f.Remedy, tt.remedy) {
				t.Errorf("detail %q (want %q), remedy %q (want %q)", f.Detail, tt.detail, f.Remedy, tt.remedy)
			}
			if !errors.Is(f, tt.err) {
				t.Error("Failure does not unwrap to the error")
			}
			if c := f.Check("bind"); c.GetOk() || c.GetCode() != tt.code || c.GetDetail() != f.Detail || c.GetRemedy() != f.Remedy {
				t.Errorf("check %v", c)
			}
		})
	}
	if Classify(StageBind, nil, cfg, "") != nil {
		t.Error("nil error classified")
	}
	// Without a config the texts stay generic.
	if f := Classify(StageBind, goldap.NewError(49, adDiag("52e")), nil, ""); f.Code != CodeWrongPassword || !strings.Contains(f.Detail, "the bind account") {
		t.Errorf("no config: %+v", f)
	}
	if f := FlavorUnknownFailure(cfg); f.Code != CodeFlavorUnknown || !strings.Contains(f.Remedy, `flavor = "openldap"`) {
		t.Errorf("flavor unknown: %+v", f)
	}
	if f := MissingReadAccess(StageUsers, []string{"objectGUID", "mail"}, cfg); f.Code != CodeMissingAccess ||
		!strings.Contains(f.Detail, "objectGUID, mail") || !strings.Contains(f.Remedy, "objectGUID, mail") {
		t.Errorf("missing attributes: %+v", f)
	}
	if got := (&Failure{Detail: "x", Remedy: "Do y."}).Error(); got != "x. To fix: Do y." {
		t.Errorf("Error() = %q", got)
	}
}

func TestClassifyCoversEveryCode(t *testing.T) {
	seen := map[string]bool{CodeFlavorUnknown: true} // FlavorUnknownFailure
	for _, tt := range classifyCases() {
		seen[tt.code] = true
	}
	for _, c := range allCodes {
		if !seen[c] {
			t.Errorf("no case gives %q", c)
		}
	}
}

// TestClassifyNeverShowsPassword runs every case with a password that the
// error itself carries (a server echoing it, a wrapping that quotes it):
// no detail, remedy or error text may show it.
func TestClassifyNeverShowsPassword(t *testing.T) {
	const pw = "Pa55-w0rd!xyz"
	cfg := testConfig()
	cfg.BindPassword = pw
	for _, tt := range classifyCases() {
		for _, err := range []error{tt.err, fmt.Errorf("%w (password %s)", tt.err, pw), echo(tt.err, pw)} {
			f := Classify(tt.stage, err, cfg, pw)
			for what, s := range map[string]string{"detail": f.Detail, "remedy": f.Remedy, "error": f.Error(), "check": f.Check("x").String()} {
				if strings.Contains(s, pw) {
					t.Errorf("%s: %s shows the password: %q", tt.name, what, s)
				}
			}
		}
	}
	for _, f := range []*Failure{FlavorUnknownFailure(cfg), MissingReadAccess(StageGroups, []string{"member"}, cfg)} {
		if strings.Contains(f.Error(), pw) {
			t.Errorf("%s shows the password", f.Code)
		}
	}
}

// echo returns err with the password added to an LDAP diagnostic.
func echo(err error, pw string) error {
	var le *goldap.Error
	if !errors.As(err, &le) {
		return err
	}
	msg := ""
	if le.Err != nil {
		msg = le.Err.Error()
	}
	return &goldap.Error{ResultCode: le.ResultCode, MatchedDN: le.MatchedDN, Err: errors.New(msg + " " + pw)}
}

func TestADBindSubCode(t *testing.T) {
	for diag, want := range map[string]string{
		"80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 52e, v1db1": "52e",
		"80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data 775, v3839": "775",
		"8009030C: LdapErr: DSID-0C0906B5, comment: AcceptSecurityContext error, data 52E, v4563": "52e",
		"data 701":              "701",
		"":                      "",
		"no data here":          "",
		"data xyz, v1":          "",
		"data 52ex, v1":         "",
		"metadata 1234567890ab": "",
	} {
		if got := ADBindSubCode(diag); got != want {
			t.Errorf("ADBindSubCode(%q) = %q, want %q", diag, got, want)
		}
	}
}
