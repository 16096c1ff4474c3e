package azuread

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/internal/capool"
	"github.com/dirsync/dirsync/internal/secret"
)

// Config keys of the connector's config {} block.
const (
	KeyTenant           = "tenant"
	KeyClientID         = "client_id"
	KeyClientSecret     = "client_secret"
	KeyClientSecretFile = "client_secret_file"
	KeyAuthorityHost    = "authority_host"
	KeyGraphURL         = "graph_url"
	KeyCAFile           = "ca_file"
	KeyRetryBudget      = "retry_budget"
	KeyMaxResponseMB    = "max_response_mb"
)

// Defaults for the optional keys: Microsoft's global (public) cloud.
const (
	DefaultAuthorityHost = "https://login.microsoftonline.com/"
	DefaultGraphURL      = "https://graph.microsoft.com/v1.0"
	// DefaultRetryBudget is how long one sync may spend retrying Graph
	// requests (throttling, 503, 504, connection resets) before it fails.
	DefaultRetryBudget = "10m"
)

// secretGroup is the one_of_group of client_secret and client_secret_file.
const secretGroup = "client_secret"

// Secret is a sensitive string that prints as "[redacted]".
type Secret = secret.Value

// Config is a parsed and validated azuread config block. Paths are
// absolute, URLs normalized and defaults applied.
type Config struct {
	// Tenant is the tenant's primary domain or directory (tenant) ID.
	Tenant string
	// ClientID is the app registration's Application (client) ID.
	ClientID string
	// ClientSecret is the client secret value given inline, if any.
	ClientSecret Secret
	// ClientSecretFile is the absolute path of a file holding the secret
	// value, if any. It is read at use time (see ReadSecret).
	ClientSecretFile string
	// AuthorityHost is the Entra authority host URL, ending in "/".
	AuthorityHost string
	// GraphURL is the Microsoft Graph base URL, without a trailing "/".
	GraphURL string
	// CAFile is the absolute path of a PEM file of extra trusted CA
	// certificates, or empty.
	CAFile string
	// RetryBudget bounds the time one sync spends on failed Graph
	// attempts and the waits after them, before the sync fails.
	RetryBudget time.Duration
	// MaxResponseMB bounds the size of one answer of Graph or Entra, in
	// MiB (see limits.go).
	MaxResponseMB int
}

// maxResponseBytes is max_response_mb in bytes.
func (c *Config) maxResponseBytes() int64 { return int64(c.MaxResponseMB) * mib }

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
	return "invalid azuread config: " + strings.Join(parts, "; ")
}

// ConfigFields describes the keys of the config block, for Describe.
func ConfigFields() []*connectorv1.ConfigField {
	str := connectorv1.ConfigField_TYPE_STRING
	return []*connectorv1.ConfigField{
		{Name: KeyTenant, Type: str, Required: true,
			Description: "The tenant: its primary domain (e.g. contoso.onmicrosoft.com) or its Directory (tenant) ID, a GUID, from the Entra admin center > Overview."},
		{Name: KeyClientID, Type: str, Required: true,
			Description: "The Application (client) ID (a GUID) from the app registration's Overview page."},
		{Name: KeyClientSecret, Type: str, Sensitive: true, OneOfGroup: secretGroup,
			Description: "The client secret's Value (not its Secret ID), from the app registration's Certificates & secrets page. Prefer client_secret_file."},
		{Name: KeyClientSecretFile, Type: str, OneOfGroup: secretGroup,
			Description: "A file holding the client secret's Value, read at each use and whitespace-trimmed. Relative paths resolve against the folder of plugins.hcl."},
		{Name: KeyAuthorityHost, Type: str, DefaultValue: DefaultAuthorityHost,
			Description: "The Entra authority host (https), e.g. https://login.microsoftonline.us/ for US Government or https://login.chinacloudapi.cn/ for China."},
		{Name: KeyGraphURL, Type: str, DefaultValue: DefaultGraphURL,
			Description: "The Microsoft Graph base URL (https), e.g. https://graph.microsoft.us/v1.0 for US Government. The token scope is derived from its host."},
		{Name: KeyCAFile, Type: str,
			Description: "A PEM file of extra CA certificates trusted, in addition to the system's, for the authority and Graph (e.g. a TLS-inspecting proxy's CA). Relative paths resolve against the folder of plugins.hcl."},
		{Name: KeyMaxResponseMB, Type: connectorv1.ConfigField_TYPE_NUMBER, DefaultValue: strconv.Itoa(DefaultMaxResponseMB),
			Description: fmt.Sprintf("The largest answer accepted from Microsoft Graph or the Entra token endpoint, in MiB (a whole number from %d to %d). A larger answer fails the sync at once, without retries, naming the request; Graph's delta pages are normally about 1 MiB. Raise it only if a sync fails because Graph's pages really are larger.", minMaxResponseMB, maxMaxResponseMB)},
		{Name: KeyRetryBudget, Type: str, DefaultValue: DefaultRetryBudget,
			Description: "How long one sync may spend retrying Microsoft Graph requests (failed attempts and the waits after them) when Graph throttles (429), is unavailable (503), times out (504) or drops the connection, as a Go duration such as \"10m\" or \"90s\". Waits follow Graph's Retry-After, else an exponential backoff with jitter. When the budget is spent the sync fails with Graph's error and the next sync resumes from the last cursor."},
	}
}

// isGUID reports whether s has the 8-4-4-4-12 hex form of a GUID.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !isHex(r) {
				return false
			}
		}
	}
	return true
}

func isHex(r rune) bool {
	return (r >= '0' && r <= '9') || (r >= 'a' && r <= 'f') || (r >= 'A' && r <= 'F')
}

// isDomain reports whether s is a DNS name of at least two labels.
func isDomain(s string) bool {
	if len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r == '-' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')) {
				return false
			}
		}
	}
	return true
}

// ParseConfig decodes, normalizes and validates a config block. It reads
// local files (ca_file, client_secret_file) but never the network. When
// anything is wrong the error is a *ConfigError listing every problem.
func ParseConfig(raw *connectorv1.Config) (*Config, error) {
	var problems []*connectorv1.ConfigProblem
	add := func(field, format string, args ...any) {
		problems = append(problems, &connectorv1.ConfigProblem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	fail := func() (*Config, error) { return nil, &ConfigError{Problems: problems} }

	values := map[string]json.RawMessage{}
	data := bytes.TrimSpace(raw.GetJson())
	if len(data) == 0 {
		data = []byte("{}")
	}
	if err := json.Unmarshal(data, &values); err != nil {
		add("", "config is not a JSON object: %v", err)
		return fail()
	}
	c := &Config{}
	var secret, budget string
	known := map[string]*string{
		KeyTenant: &c.Tenant, KeyClientID: &c.ClientID, KeyClientSecret: &secret,
		KeyClientSecretFile: &c.ClientSecretFile, KeyAuthorityHost: &c.AuthorityHost,
		KeyGraphURL: &c.GraphURL, KeyCAFile: &c.CAFile, KeyRetryBudget: &budget,
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == KeyMaxResponseMB {
			n, err := parseMaxResponseMB(values[k])
			if err != nil {
				add(k, "%v", err)
			}
			c.MaxResponseMB = n
			continue
		}
		dst, ok := known[k]
		if !ok {
			add(k, "unknown key; the azuread connector accepts %s", strings.Join(knownKeys(), ", "))
			continue
		}
		if string(values[k]) == "null" {
			continue
		}
		if err := json.Unmarshal(values[k], dst); err != nil {
			add(k, "must be a string")
		}
	}
	c.ClientSecret = Secret(secret)
	c.Tenant = strings.TrimSpace(c.Tenant)
	c.ClientID = strings.TrimSpace(c.ClientID)
	c.AuthorityHost = strings.TrimSpace(c.AuthorityHost)
	c.GraphURL = strings.TrimSpace(c.GraphURL)
	c.ClientSecretFile = resolvePath(raw.GetBaseDir(), c.ClientSecretFile)
	c.CAFile = resolvePath(raw.GetBaseDir(), c.CAFile)
	if c.AuthorityHost == "" {
		c.AuthorityHost = DefaultAuthorityHost
	}
	if c.GraphURL == "" {
		c.GraphURL = DefaultGraphURL
	}
	if c.MaxResponseMB == 0 {
		c.MaxResponseMB = DefaultMaxResponseMB
	}
	if budget = strings.TrimSpace(budget); budget == "" {
		budget = DefaultRetryBudget
	}
	if d, err := parseRetryBudget(budget); err != nil {
		add(KeyRetryBudget, "%v", err)
	} else {
		c.RetryBudget = d
	}
	if len(problems) > 0 {
		return fail()
	}
	problems = append(problems, c.Validate()...)
	if len(problems) > 0 {
		return fail()
	}
	c.AuthorityHost = strings.TrimRight(c.AuthorityHost, "/") + "/"
	c.GraphURL = strings.TrimRight(c.GraphURL, "/")
	return c, nil
}

func knownKeys() []string {
	return []string{KeyTenant, KeyClientID, KeyClientSecret, KeyClientSecretFile, KeyAuthorityHost, KeyGraphURL, KeyCAFile, KeyRetryBudget, KeyMaxResponseMB}
}

// parseMaxResponseMB parses max_response_mb: a whole number of MiB within
// bounds, or null (the default, returned as 0).
func parseMaxResponseMB(raw json.RawMessage) (int, error) {
	if string(raw) == "null" {
		return 0, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, fmt.Errorf("must be a number of MiB, such as %d (without quotes)", DefaultMaxResponseMB)
	}
	if f != math.Trunc(f) || f < minMaxResponseMB || f > maxMaxResponseMB {
		return 0, fmt.Errorf("%v is out of range: it must be a whole number of MiB from %d to %d", f, minMaxResponseMB, maxMaxResponseMB)
	}
	return int(f), nil
}

// Bounds of retry_budget: below a second no retry could wait for Graph's
// usual Retry-After; above a day a sync would hang rather than fail.
const (
	minRetryBudget = time.Second
	maxRetryBudget = 24 * time.Hour
)

// parseRetryBudget parses retry_budget, a Go duration string.
func parseRetryBudget(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: write it like \"10m\", \"90s\" or \"1h30m\"", s)
	}
	if d < minRetryBudget || d > maxRetryBudget {
		return 0, fmt.Errorf("%q is out of range: it must be between %s and %s", s, minRetryBudget, "24h")
	}
	return d, nil
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

// Validate checks the config for meaning and returns every problem found.
// It reads ca_file and client_secret_file but never touches the network.
func (c *Config) Validate() []*connectorv1.ConfigProblem {
	var problems []*connectorv1.ConfigProblem
	add := func(field, format string, args ...any) {
		problems = append(problems, &connectorv1.ConfigProblem{Field: field, Message: fmt.Sprintf(format, args...)})
	}

	switch t := c.Tenant; {
	case t == "":
		add(KeyTenant, "is required: the tenant's primary domain (e.g. contoso.onmicrosoft.com) or its Directory (tenant) ID")
	case isGUID(t):
	case strings.EqualFold(t, "common") || strings.EqualFold(t, "organizations") || strings.EqualFold(t, "consumers"):
		add(KeyTenant, "%q is not a tenant: an app-only (client secret) sign-in needs the tenant's primary domain or Directory (tenant) ID", t)
	case !isDomain(t):
		add(KeyTenant, "%q is neither a domain (e.g. contoso.onmicrosoft.com) nor a Directory (tenant) ID (a GUID)", t)
	}

	switch id := c.ClientID; {
	case id == "":
		add(KeyClientID, "is required: the Application (client) ID from the app registration's Overview")
	case !isGUID(id):
		add(KeyClientID, "%q is not an Application (client) ID: expected a GUID such as 00000000-0000-0000-0000-000000000000, from the app registration's Overview", id)
	}

	switch hasSecret, hasFile := c.ClientSecret != "", c.ClientSecretFile != ""; {
	case hasSecret && hasFile:
		add(KeyClientSecret, "set only one of client_secret and client_secret_file")
	case !hasSecret && !hasFile:
		add(KeyClientSecret, "one of client_secret or client_secret_file is required")
	case hasSecret && strings.TrimSpace(c.ClientSecret.Reveal()) == "":
		add(KeyClientSecret, "is blank")
	case hasFile:
		if _, err := c.ReadSecret(); err != nil {
			add(KeyClientSecretFile, "%v", err)
		}
	}

	if err := checkHTTPSURL(c.AuthorityHost); err != nil {
		add(KeyAuthorityHost, "%v", err)
	}
	if err := checkHTTPSURL(c.GraphURL); err != nil {
		add(KeyGraphURL, "%v", err)
	}

	if c.CAFile != "" {
		if _, err := capool.Load(c.CAFile); err != nil {
			add(KeyCAFile, "%v", err)
		}
	}
	return problems
}

// checkHTTPSURL accepts absolute https URLs with a host and no credentials,
// query or fragment.
func checkHTTPSURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", s, err)
	}
	switch {
	case u.Scheme != "https":
		return fmt.Errorf("%q must be an absolute https:// URL", s)
	case u.Hostname() == "":
		return fmt.Errorf("%q has no host", s)
	case u.User != nil:
		return fmt.Errorf("%q must not contain credentials", s)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q must not have a query or fragment", s)
	}
	return nil
}

// ReadSecret returns the client secret value: client_secret, or the
// whitespace-trimmed content of client_secret_file read now. Its errors
// never contain the value.
func (c *Config) ReadSecret() (string, error) {
	if c.ClientSecretFile == "" {
		return c.ClientSecret.Reveal(), nil
	}
	b, err := os.ReadFile(c.ClientSecretFile)
	if err != nil {
		return "", fmt.Errorf("cannot read the secret file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", c.ClientSecretFile)
	}
	return s, nil
}
