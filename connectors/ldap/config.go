package ldap

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/internal/capool"
	"github.com/dirsync/dirsync/internal/secret"
)

// Config keys of the connector's config {} block.
const (
	KeyURL              = "url"
	KeyStartTLS         = "start_tls"
	KeyBindDN           = "bind_dn"
	KeyBindPassword     = "bind_password"
	KeyBindPasswordFile = "bind_password_file"
	KeyCAFile           = "ca_file"
	KeyBaseDN           = "base_dn"
	KeyUserFilter       = "user_filter"
	KeyGroupFilter      = "group_filter"
	KeyFlavor           = "flavor"
	KeyPageSize         = "page_size"
	KeyFollowReferrals  = "follow_referrals"
	KeyDisabledFilter   = "disabled_filter"
	KeyTimeout          = "timeout"
	KeyAttrID           = "attr_id"
	KeyAttrMail         = "attr_mail"
	KeyAttrDisplayName  = "attr_display_name"
	KeyAttrGivenName    = "attr_given_name"
	KeyAttrSurname      = "attr_surname"
	KeyAttrDepartment   = "attr_department"
	KeyAttrJobTitle     = "attr_job_title"
	KeyAttrUPN          = "attr_upn"
	KeyAttrMember       = "attr_member"
)

// Defaults and bounds of the optional keys that do not depend on the
// flavor.
const (
	// DefaultPageSize is how many entries one page of a paged search asks
	// for: below Active Directory's MaxPageSize (1000) and OpenLDAP's
	// default size limit (500 is its soft limit).
	DefaultPageSize = 500
	// MaxPageSize bounds page_size: larger pages only raise the memory one
	// answer takes; servers cap them anyway.
	MaxPageSize = 5000
	// DefaultTimeout bounds one LDAP operation (dial, bind, one page).
	DefaultTimeout = 30 * time.Second
	// MaxTimeout bounds timeout: beyond an hour a hung server would hold a
	// sync rather than fail it.
	MaxTimeout = time.Hour
	// DefaultDisabledFilter marks the OpenLDAP users that cannot sign in:
	// those the ppolicy overlay (or an admin) locked.
	DefaultDisabledFilter = "(pwdAccountLockedTime=*)"
)

// passwordGroup is the one_of_group of bind_password and
// bind_password_file.
const passwordGroup = "bind_password"

// Secret is a sensitive string that prints as "[redacted]".
type Secret = secret.Value

// Config is a parsed and validated ldap config block: paths are absolute,
// and the flavor-independent defaults are applied. What depends on the
// flavor (filters, attribute names) is resolved by UserFilter,
// GroupFilter and Attributes once the flavor is known.
type Config struct {
	// URL is the directory server, ldap://host[:port] or ldaps://host[:port].
	URL string
	// StartTLS upgrades an ldap:// connection with the StartTLS operation
	// before binding.
	StartTLS bool
	// BindDN is the account the connector binds as: a DN, or for Active
	// Directory also user@domain or DOMAIN\user.
	BindDN string
	// BindPassword is the password given inline, if any.
	BindPassword Secret
	// BindPasswordFile is the absolute path of a file holding the password,
	// if any. It is read at use time (see Password).
	BindPasswordFile string
	// CAFile is the absolute path of a PEM file of extra trusted CA
	// certificates, or empty.
	CAFile string
	// BaseDN is where user and group searches start.
	BaseDN string
	// Flavor is the configured flavor; FlavorUnknown means "detect it from
	// the rootDSE" (see DetectFlavor).
	Flavor Flavor
	// PageSize is the page size of paged searches.
	PageSize int
	// FollowReferrals makes searches chase referrals to other servers.
	FollowReferrals bool
	// DisabledFilter marks disabled users (OpenLDAP only; Active
	// Directory's userAccountControl says it).
	DisabledFilter string
	// Timeout bounds one LDAP operation.
	Timeout time.Duration

	// disabledSet: disabled_filter was set (not defaulted).
	disabledSet bool

	// userFilter and groupFilter are the configured filters, "" for the
	// flavor's default.
	userFilter, groupFilter string
	// attrs holds the configured attribute names, "" (nil) for the
	// flavor's default.
	attrs Attributes
}

// ConfigError lists everything wrong with a config block.
type ConfigError struct {
	Problems []*connectorv1.ConfigProblem
}

// Error joins the problems into one line.
func (e *ConfigError) Error() string {
	parts := make([]string, 0, len(e.Problems))
	for _, p := range e.Problems {
		if p.GetField() != "" {
			parts = append(parts, p.GetField()+": "+p.GetMessage())
		} else {
			parts = append(parts, p.GetMessage())
		}
	}
	return "invalid ldap config: " + strings.Join(parts, "; ")
}

// ConfigFields describes the keys of the config block, for Describe.
func ConfigFields() []*connectorv1.ConfigField {
	str := connectorv1.ConfigField_TYPE_STRING
	boolean := connectorv1.ConfigField_TYPE_BOOL
	num := connectorv1.ConfigField_TYPE_NUMBER
	ad, ol := DefaultAttributes(FlavorActiveDirectory), DefaultAttributes(FlavorOpenLDAP)
	attr := func(key, what, adName, olName string) *connectorv1.ConfigField {
		f := &connectorv1.ConfigField{Name: key, Type: str}
		if adName == olName {
			f.DefaultValue = adName
			f.Description = fmt.Sprintf("The LDAP attribute holding %s (default %s). Set it only for a schema that keeps it elsewhere.", what, adName)
			return f
		}
		if olName == "" {
			olName = "none"
		}
		f.Description = fmt.Sprintf("The LDAP attribute holding %s (default %s for Active Directory, %s for OpenLDAP). Set it only for a schema that keeps it elsewhere.", what, adName, olName)
		return f
	}
	return []*connectorv1.ConfigField{
		{Name: KeyURL, Type: str, Required: true,
			Description: "The directory server: ldaps://host[:port] (TLS, port 636 by default) or ldap://host[:port] (port 389; add start_tls = true to encrypt it). One server; no path or query."},
		{Name: KeyStartTLS, Type: boolean, DefaultValue: "false",
			Description: "Upgrade an ldap:// connection to TLS with StartTLS before binding. Not allowed with ldaps:// (already TLS). Active Directory refuses a simple bind without TLS unless its policy was relaxed."},
		{Name: KeyBindDN, Type: str, Required: true,
			Description: "The account the connector binds (signs in) as, with read access to users and groups under base_dn: a DN (cn=dirsync,ou=services,dc=example,dc=com), or for Active Directory also user@domain or DOMAIN\\user."},
		{Name: KeyBindPassword, Type: str, Sensitive: true, OneOfGroup: passwordGroup,
			Description: "The bind_dn account's password. Prefer bind_password_file."},
		{Name: KeyBindPasswordFile, Type: str, OneOfGroup: passwordGroup,
			Description: "A file holding the bind_dn account's password, read at each use; trailing newlines are removed, other whitespace is kept. Relative paths resolve against the folder of plugins.hcl."},
		{Name: KeyCAFile, Type: str,
			Description: "A PEM file of CA certificates trusted, in addition to the system's, for the server's TLS certificate (ldaps:// or start_tls), e.g. the domain's enterprise CA. Relative paths resolve against the folder of plugins.hcl. Certificate checks cannot be turned off."},
		{Name: KeyBaseDN, Type: str, Required: true,
			Description: "Where user and group searches start (subtree), e.g. dc=example,dc=com or OU=Staff,DC=corp,DC=example,DC=com."},
		{Name: KeyUserFilter, Type: str,
			Description: "The LDAP filter selecting users (default " + adUserFilter + " for Active Directory, " + olUserFilter + " for OpenLDAP)."},
		{Name: KeyGroupFilter, Type: str,
			Description: "The LDAP filter selecting groups (default " + adGroupFilter + " for Active Directory, " + olGroupFilter + " for OpenLDAP)."},
		{Name: KeyFlavor, Type: str,
			Description: "The kind of directory server: active_directory (also Samba AD) or openldap. By default it is detected from the server's rootDSE; set it when detection fails."},
		{Name: KeyPageSize, Type: num, DefaultValue: strconv.Itoa(DefaultPageSize),
			Description: fmt.Sprintf("How many entries one page of a search asks for (a whole number from 1 to %d). Keep it at or below the server's limit (Active Directory's MaxPageSize is 1000).", MaxPageSize)},
		{Name: KeyFollowReferrals, Type: boolean, DefaultValue: "false",
			Description: "Reserved: chasing referrals to the servers they name is not supported yet, and true is refused. Referrals (e.g. to another Active Directory domain's naming context) are skipped."},
		{Name: KeyDisabledFilter, Type: str, DefaultValue: DefaultDisabledFilter,
			Description: "OpenLDAP only: the LDAP filter marking users whose account is disabled (the default marks accounts the ppolicy overlay locked). Active Directory's userAccountControl says it; this key is not allowed with flavor = \"active_directory\"."},
		{Name: KeyTimeout, Type: num, DefaultValue: strconv.Itoa(int(DefaultTimeout / time.Second)),
			Description: fmt.Sprintf("How long one LDAP operation (connecting, binding, one page of a search) may take, in seconds (a whole number from 1 to %d).", int(MaxTimeout/time.Second))},
		attr(KeyAttrID, "the object's unique, never reused ID (a GUID)", ad.ID, ol.ID),
		attr(KeyAttrMail, "the e-mail address", ad.Mail, ol.Mail),
		attr(KeyAttrDisplayName, "the display name (cn when empty)", ad.DisplayName, ol.DisplayName),
		attr(KeyAttrGivenName, "the given (first) name", ad.GivenName, ol.GivenName),
		attr(KeyAttrSurname, "the surname", ad.Surname, ol.Surname),
		attr(KeyAttrDepartment, "the department", ad.Department, ol.Department),
		attr(KeyAttrJobTitle, "the job title", ad.JobTitle, ol.JobTitle),
		attr(KeyAttrUPN, "the user's sign-in name (user principal name)", ad.UPN, ol.UPN),
		{Name: KeyAttrMember, Type: str, DefaultValue: "member",
			Description: "The group attribute listing member DNs (default member; for OpenLDAP member and uniqueMember). Set it only for a schema that keeps members elsewhere."},
	}
}

// knownKeys returns every config key, sorted.
func knownKeys() []string {
	var keys []string
	for _, f := range ConfigFields() {
		keys = append(keys, f.GetName())
	}
	sort.Strings(keys)
	return keys
}

// ParseConfig decodes and validates a config block. It reads local files
// (ca_file, bind_password_file) but never the network. When anything is
// wrong the error is a *ConfigError listing every problem.
func ParseConfig(raw *connectorv1.Config) (*Config, error) {
	c, problems := decode(raw)
	if len(problems) == 0 {
		problems = c.validate()
	}
	if len(problems) > 0 {
		return nil, &ConfigError{Problems: problems}
	}
	return c, nil
}

// decode reads the JSON of the block into a Config with defaults applied,
// reporting keys that are unknown or of the wrong type.
func decode(raw *connectorv1.Config) (*Config, []*connectorv1.ConfigProblem) {
	values, err := jsonObject(raw.GetJson())
	if err != nil {
		return nil, []*connectorv1.ConfigProblem{{Message: "config is not a JSON object: " + err.Error()}}
	}
	c := &Config{PageSize: DefaultPageSize, Timeout: DefaultTimeout, DisabledFilter: DefaultDisabledFilter}
	in := input{pageSize: DefaultPageSize, timeout: DefaultTimeout.Seconds()}
	problems := store(values, c.targets(&in))
	return c, append(problems, c.apply(&in, raw.GetBaseDir())...)
}

// jsonObject decodes the config's JSON object; empty JSON is {}.
func jsonObject(data []byte) (map[string]json.RawMessage, error) {
	values := map[string]json.RawMessage{}
	if data = bytes.TrimSpace(data); len(data) == 0 {
		return values, nil
	}
	err := json.Unmarshal(data, &values)
	return values, err
}

// input holds the keys decode reads into something other than a Config
// field, before apply checks and converts them.
type input struct {
	password, flavor, disabled, member string
	pageSize, timeout                  float64
}

// targets says where store puts each key's value, by the key's type.
type targets struct {
	strs  map[string]*string
	bools map[string]*bool
	nums  map[string]*float64
}

func (c *Config) targets(in *input) targets {
	return targets{
		strs: map[string]*string{
			KeyURL: &c.URL, KeyBindDN: &c.BindDN, KeyBindPassword: &in.password, KeyBindPasswordFile: &c.BindPasswordFile,
			KeyCAFile: &c.CAFile, KeyBaseDN: &c.BaseDN, KeyUserFilter: &c.userFilter, KeyGroupFilter: &c.groupFilter,
			KeyFlavor: &in.flavor, KeyDisabledFilter: &in.disabled,
			KeyAttrID: &c.attrs.ID, KeyAttrMail: &c.attrs.Mail, KeyAttrDisplayName: &c.attrs.DisplayName,
			KeyAttrGivenName: &c.attrs.GivenName, KeyAttrSurname: &c.attrs.Surname, KeyAttrDepartment: &c.attrs.Department,
			KeyAttrJobTitle: &c.attrs.JobTitle, KeyAttrUPN: &c.attrs.UPN, KeyAttrMember: &in.member,
		},
		bools: map[string]*bool{KeyStartTLS: &c.StartTLS, KeyFollowReferrals: &c.FollowReferrals},
		nums:  map[string]*float64{KeyPageSize: &in.pageSize, KeyTimeout: &in.timeout},
	}
}

// store decodes each value into its target, in key order, and reports
// unknown keys and values of the wrong type. null leaves a key unset.
func store(values map[string]json.RawMessage, to targets) []*connectorv1.ConfigProblem {
	var problems []*connectorv1.ConfigProblem
	add := func(field, msg string) {
		problems = append(problems, &connectorv1.ConfigProblem{Field: field, Message: msg})
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := values[k]
		if string(v) == "null" {
			continue
		}
		if dst, ok := to.strs[k]; ok {
			if json.Unmarshal(v, dst) != nil {
				add(k, "must be a string")
			}
		} else if dst, ok := to.bools[k]; ok {
			if json.Unmarshal(v, dst) != nil {
				add(k, "must be true or false (without quotes)")
			}
		} else if dst, ok := to.nums[k]; ok {
			if json.Unmarshal(v, dst) != nil {
				add(k, "must be a number (without quotes)")
			}
		} else {
			add(k, "unknown key; the ldap connector accepts "+strings.Join(knownKeys(), ", "))
		}
	}
	return problems
}

// apply trims the values, resolves paths against baseDir and converts
// what input holds, reporting numbers out of range.
func (c *Config) apply(in *input, baseDir string) []*connectorv1.ConfigProblem {
	var problems []*connectorv1.ConfigProblem
	c.BindPassword = Secret(in.password) // never trimmed: spaces may be part of it
	for _, s := range []*string{&c.URL, &c.BindDN, &c.BaseDN, &c.userFilter, &c.groupFilter, &in.flavor, &in.disabled,
		&c.attrs.ID, &c.attrs.Mail, &c.attrs.DisplayName, &c.attrs.GivenName, &c.attrs.Surname,
		&c.attrs.Department, &c.attrs.JobTitle, &c.attrs.UPN, &in.member} {
		*s = strings.TrimSpace(*s)
	}
	c.Flavor = Flavor(in.flavor)
	if in.disabled != "" {
		c.DisabledFilter, c.disabledSet = in.disabled, true
	}
	if in.member != "" {
		c.attrs.Members = []string{in.member}
	}
	c.BindPasswordFile = resolvePath(baseDir, c.BindPasswordFile)
	c.CAFile = resolvePath(baseDir, c.CAFile)

	if n, err := wholeNumber(in.pageSize, 1, MaxPageSize, "entries"); err != nil {
		problems = append(problems, &connectorv1.ConfigProblem{Field: KeyPageSize, Message: err.Error()})
	} else {
		c.PageSize = n
	}
	if n, err := wholeNumber(in.timeout, 1, int(MaxTimeout/time.Second), "seconds"); err != nil {
		problems = append(problems, &connectorv1.ConfigProblem{Field: KeyTimeout, Message: err.Error()})
	} else {
		c.Timeout = time.Duration(n) * time.Second
	}
	return problems
}

// wholeNumber checks that f is a whole number within [lo, hi].
func wholeNumber(f float64, lo, hi int, unit string) (int, error) {
	if f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
		return 0, fmt.Errorf("%v is out of range: it must be a whole number of %s from %d to %d", f, unit, lo, hi)
	}
	return int(f), nil
}

// resolvePath makes p absolute against base (the folder of plugins.hcl).
func resolvePath(base, p string) string {
	p = strings.TrimSpace(p)
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if base == "" {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
		return p
	}
	return filepath.Join(base, p)
}

// validate checks the config for meaning and returns every problem found,
// each naming its key. It reads ca_file and bind_password_file but never
// touches the network.
func (c *Config) validate() []*connectorv1.ConfigProblem {
	var problems []*connectorv1.ConfigProblem
	add := func(field, format string, args ...any) {
		problems = append(problems, &connectorv1.ConfigProblem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	c.validateConnection(add)
	c.validateSearch(add)
	return problems
}

// problemFunc adds a problem with the key at fault.
type problemFunc func(field, format string, args ...any)

// validateConnection checks what connecting and binding need: url,
// start_tls, flavor, bind_dn, the password and ca_file.
func (c *Config) validateConnection(add problemFunc) {
	tls, err := checkURL(c.URL)
	if err != nil {
		add(KeyURL, "%v", err)
	}
	if c.StartTLS && err == nil && tls {
		add(KeyStartTLS, "start_tls is for ldap:// URLs; %s already uses TLS: remove start_tls", c.URL)
	}

	switch c.Flavor {
	case FlavorUnknown, FlavorActiveDirectory, FlavorOpenLDAP:
	default:
		add(KeyFlavor, "%q is not a flavor: write %q or %q, or leave it out to detect it", string(c.Flavor), FlavorActiveDirectory, FlavorOpenLDAP)
	}

	if err := checkBindDN(c.BindDN, c.Flavor); err != nil {
		add(KeyBindDN, "%v", err)
	}
	switch hasPassword, hasFile := c.BindPassword != "", c.BindPasswordFile != ""; {
	case hasPassword && hasFile:
		add(KeyBindPassword, "set only one of bind_password and bind_password_file")
	case !hasPassword && !hasFile:
		add(KeyBindPassword, "one of bind_password or bind_password_file is required")
	case hasPassword && strings.TrimSpace(c.BindPassword.Reveal()) == "":
		add(KeyBindPassword, "is blank")
	case hasFile:
		if _, err := c.Password(); err != nil {
			add(KeyBindPasswordFile, "%v", err)
		}
	}

	if c.CAFile != "" {
		if _, err := capool.Load(c.CAFile); err != nil {
			add(KeyCAFile, "%v", err)
		}
	}
	// Chasing referrals (binding to the servers they name with the same
	// password) is not written yet: refuse it rather than read less than
	// the admin asked for without saying so.
	if c.FollowReferrals {
		add(KeyFollowReferrals, "following referrals is not supported yet: dirsync reads the one server in url; point url at a domain controller (or a global catalog) of the domain that holds base_dn, and remove follow_referrals")
	}
}

// validateSearch checks what searching needs: base_dn, the filters and
// the attribute names.
func (c *Config) validateSearch(add problemFunc) {
	switch dn, err := goldap.ParseDN(c.BaseDN); {
	case c.BaseDN == "":
		add(KeyBaseDN, "is required: the DN searches start from, e.g. dc=example,dc=com")
	case err != nil:
		add(KeyBaseDN, "%q is not a DN: %v; write it like dc=example,dc=com, escaping , + \" \\ < > ; in values with a backslash", c.BaseDN, err)
	case len(dn.RDNs) == 0:
		add(KeyBaseDN, "%q is not a DN: write it like dc=example,dc=com", c.BaseDN)
	}

	for _, f := range []struct{ key, value string }{
		{KeyUserFilter, c.userFilter}, {KeyGroupFilter, c.groupFilter}, {KeyDisabledFilter, c.DisabledFilter},
	} {
		if f.value == "" && f.key != KeyDisabledFilter {
			continue
		}
		if err := CheckFilter(f.value); err != nil {
			add(f.key, "%v", err)
		}
	}
	if c.Flavor == FlavorActiveDirectory && c.disabledSet {
		add(KeyDisabledFilter, "is for OpenLDAP only: Active Directory marks disabled accounts in userAccountControl, which the connector reads; remove disabled_filter")
	}

	for _, a := range []struct{ key, value string }{
		{KeyAttrID, c.attrs.ID}, {KeyAttrMail, c.attrs.Mail}, {KeyAttrDisplayName, c.attrs.DisplayName},
		{KeyAttrGivenName, c.attrs.GivenName}, {KeyAttrSurname, c.attrs.Surname}, {KeyAttrDepartment, c.attrs.Department},
		{KeyAttrJobTitle, c.attrs.JobTitle}, {KeyAttrUPN, c.attrs.UPN}, {KeyAttrMember, firstOr(c.attrs.Members, "")},
	} {
		if a.value != "" && !isAttributeName(a.value) {
			add(a.key, "%q is not an LDAP attribute name: a letter followed by letters, digits and hyphens (e.g. employeeNumber), or a numeric OID (e.g. 2.5.4.42), without options such as ;binary", a.value)
		}
	}
}

// checkURL accepts ldap:// and ldaps:// URLs with a host, an optional
// port and nothing else, and reports whether the URL uses TLS.
func checkURL(s string) (tls bool, err error) {
	if s == "" {
		return false, errors.New("is required: the directory server, e.g. ldaps://dc1.example.com")
	}
	u, err := url.Parse(s)
	if err != nil {
		return false, fmt.Errorf("%q is not a URL: write it like ldaps://dc1.example.com or ldap://ldap.example.com:389", s)
	}
	switch {
	case u.Scheme != "ldap" && u.Scheme != "ldaps":
		return false, fmt.Errorf("%q must start with ldaps:// (TLS) or ldap://", s)
	case u.Opaque != "" || u.Hostname() == "":
		return false, fmt.Errorf("%q has no host: write it like ldaps://dc1.example.com", s)
	case u.User != nil:
		return false, fmt.Errorf("%q must not contain credentials: use bind_dn and bind_password_file", s)
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return false, fmt.Errorf("%q must have no path or query (an LDAP URL's base DN and filter are base_dn and user_filter here)", s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return false, fmt.Errorf("%q has an invalid port %q", s, p)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return false, fmt.Errorf("%q has an empty port", s)
	}
	if strings.ContainsAny(u.Hostname(), " \t") || (strings.Contains(u.Hostname(), ":") && net.ParseIP(u.Hostname()) == nil) {
		return false, fmt.Errorf("%q has an invalid host", s)
	}
	return u.Scheme == "ldaps", nil
}

// checkBindDN accepts a DN and, unless the flavor is OpenLDAP, Active
// Directory's user@domain and DOMAIN\user forms.
func checkBindDN(s string, f Flavor) error {
	const forms = "a DN such as cn=dirsync,ou=services,dc=example,dc=com (Active Directory also takes dirsync@example.com or EXAMPLE\\dirsync)"
	if s == "" {
		return errors.New("is required: the account to bind as, " + forms)
	}
	if strings.Contains(s, "=") {
		if dn, err := goldap.ParseDN(s); err != nil || len(dn.RDNs) == 0 {
			return fmt.Errorf("%q is not a DN: write %s", s, forms)
		}
		return nil
	}
	adForm := strings.Contains(s, "@") || strings.Contains(s, `\`)
	switch {
	case adForm && f == FlavorOpenLDAP:
		return fmt.Errorf("%q is not a DN: OpenLDAP binds with a DN such as cn=dirsync,ou=services,dc=example,dc=com", s)
	case adForm:
		return nil
	}
	return fmt.Errorf("%q is neither a DN nor an Active Directory account name: write %s", s, forms)
}

// CheckFilter compiles an LDAP filter and explains why it does not
// compile: where and what, in go-ldap's words without its "ldap: " prefix.
func CheckFilter(filter string) error {
	if filter == "" {
		return errors.New("is empty: write an LDAP filter in parentheses, e.g. (objectClass=person)")
	}
	if _, err := goldap.CompileFilter(filter); err != nil {
		msg := err.Error()
		var le *goldap.Error
		if errors.As(err, &le) && le.Err != nil {
			msg = le.Err.Error()
		}
		msg = strings.TrimPrefix(msg, "ldap: ")
		return fmt.Errorf("%q is not a valid LDAP filter: %s; write it in parentheses like (&(objectClass=person)(mail=*)), escaping * ( ) \\ in values as \\2a \\28 \\29 \\5c", filter, msg)
	}
	return nil
}

// isAttributeName reports whether s is an LDAP attribute type: a
// keystring (letter, then letters, digits, hyphens) or a numeric OID.
func isAttributeName(s string) bool {
	if s == "" {
		return false
	}
	if s[0] >= '0' && s[0] <= '9' {
		for _, part := range strings.Split(s, ".") {
			if part == "" || strings.Trim(part, "0123456789") != "" || (len(part) > 1 && part[0] == '0') {
				return false
			}
		}
		return strings.Contains(s, ".")
	}
	for i, r := range s {
		letter := (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if !letter && (i == 0 || !(r == '-' || (r >= '0' && r <= '9'))) {
			return false
		}
	}
	return true
}

func firstOr(values []string, def string) string {
	if len(values) == 0 {
		return def
	}
	return values[0]
}

// Password returns the bind password: bind_password, or the content of
// bind_password_file read now with its trailing newlines removed (other
// whitespace may belong to the password). Its errors never contain the
// value.
func (c *Config) Password() (string, error) {
	if c.BindPasswordFile == "" {
		return c.BindPassword.Reveal(), nil
	}
	b, err := os.ReadFile(c.BindPasswordFile)
	if err != nil {
		return "", fmt.Errorf("cannot read the password file: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if strings.TrimSpace(s) == "" {
		return "", fmt.Errorf("password file %s is empty", c.BindPasswordFile)
	}
	return s, nil
}

// UserFilter returns user_filter, or the default filter of flavor f.
func (c *Config) UserFilter(f Flavor) string {
	if c.userFilter != "" {
		return c.userFilter
	}
	if f == FlavorActiveDirectory {
		return adUserFilter
	}
	return olUserFilter
}

// GroupFilter returns group_filter, or the default filter of flavor f.
func (c *Config) GroupFilter(f Flavor) string {
	if c.groupFilter != "" {
		return c.groupFilter
	}
	if f == FlavorActiveDirectory {
		return adGroupFilter
	}
	return olGroupFilter
}

// Attributes returns the attribute names to read for flavor f: the
// attr_* keys set, the flavor's defaults for the others.
func (c *Config) Attributes(f Flavor) Attributes {
	a := DefaultAttributes(f)
	for _, o := range []struct {
		dst *string
		v   string
	}{
		{&a.ID, c.attrs.ID}, {&a.Mail, c.attrs.Mail}, {&a.DisplayName, c.attrs.DisplayName},
		{&a.GivenName, c.attrs.GivenName}, {&a.Surname, c.attrs.Surname}, {&a.Department, c.attrs.Department},
		{&a.JobTitle, c.attrs.JobTitle}, {&a.UPN, c.attrs.UPN},
	} {
		if o.v != "" {
			*o.dst = o.v
		}
	}
	if len(c.attrs.Members) > 0 {
		a.Members = append([]string(nil), c.attrs.Members...)
	}
	return a
}

// Decoder returns the entry decoder for flavor f under this config.
func (c *Config) Decoder(f Flavor) *Decoder {
	d := &Decoder{Flavor: f, Attrs: c.Attributes(f)}
	if f == FlavorOpenLDAP {
		d.DisabledAttr, _ = PresenceAttribute(c.DisabledFilter)
	}
	return d
}

// CertPool returns the system's trusted roots plus ca_file's certificates,
// for the TLS configuration of ldaps:// and start_tls.
func (c *Config) CertPool() (*x509.CertPool, error) { return capool.WithSystem(c.CAFile) }
