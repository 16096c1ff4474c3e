package graphsim

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultTenantDomain = "contoso.onmicrosoft.com"
	DefaultClientID     = "6731de76-14a6-49ae-97bc-6eba6914391e"
)

// DefaultRoles are the application permissions granted when Config.Roles
// is nil.
func DefaultRoles() []string { return []string{"User.Read.All", "GroupMember.Read.All"} }

// Defaults of the delta and token settings.
const (
	// DefaultTokenLifetime is the access token lifetime Entra reports
	// (expires_in 3599).
	DefaultTokenLifetime = 3599 * time.Second
	// DefaultDeltaMembersPerPage is how many members@delta entries one
	// delta page holds at most.
	DefaultDeltaMembersPerPage = 200
)

// Limits on the generated tenant size.
const (
	MaxUsers  = 2_000_000
	MaxGroups = 500_000
	// MaxResources bounds Config.Resources.
	MaxResources = 100_000
)

// Config describes the simulated tenant and its registered application.
//
// Generation is deterministic: New with equal Configs produces identical
// tenants on every platform and Go release, a different Seed produces a
// different tenant, and the users do not depend on Groups.
//
// Guarantee for tests: when Users >= 5 and Groups >= 2 the tenant always
// contains at least one user without mail, one unlicensed user, one
// disabled user, one guest, one user whose name is not ASCII, one Unified
// (Microsoft 365) group, one security group, and a Unified group that has a
// member that is not a user. When Groups >= 1 the first group is the
// Unified group "All Company" holding every user (if Users <= 100,000).
type Config struct {
	// Users and Groups are the tenant size; 0 means none, negative is an
	// error.
	Users, Groups int
	// Seed makes generation deterministic.
	Seed int64
	// TenantDomain is the primary domain (default DefaultTenantDomain). It is
	// matched case-insensitively and stored lowercase.
	TenantDomain string
	// TenantID is the directory ID, a GUID; default derived from Seed.
	TenantID string
	// ClientID is the registered application's client ID (a GUID); default
	// DefaultClientID.
	ClientID string
	// ClientSecret is the secret Value the application must present. Required.
	ClientSecret string
	// SecretID is the secret's ID (a GUID); default derived from Seed. A
	// client presenting it instead of the Value gets AADSTS7000215, as in
	// Entra.
	SecretID string
	// SecretExpired makes the correct secret fail with AADSTS7000222.
	SecretExpired bool
	// Roles are the application permissions granted with admin consent. Nil
	// means DefaultRoles; an empty non-nil slice grants nothing (every Graph
	// call then answers 403).
	Roles []string
	// Log receives one line per request (method, path, status, duration);
	// nil is silent. Secrets and tokens are never logged.
	Log io.Writer

	// TokenLifetime is the lifetime of the access tokens issued (default
	// DefaultTokenLifetime); expires_in follows it. Graph rejects a token
	// past its expiry with 401 InvalidAuthenticationToken. Change it at
	// run time with SetTokenLifetime.
	TokenLifetime time.Duration
	// DeltaTokenTTL is how long a delta token (the $deltatoken of an
	// @odata.deltaLink) stays valid; 0 means forever. An older token is
	// answered as DeltaTokenExpiry says. Change it at run time with
	// SetDeltaTokenTTL.
	DeltaTokenTTL time.Duration
	// DeltaTokenExpiry is how a delta token older than DeltaTokenTTL is
	// refused (default ExpiryGone).
	DeltaTokenExpiry ExpiryMode
	// DeltaMembersPerPage is the most members@delta entries a groups delta
	// page holds (default DefaultDeltaMembersPerPage). A group with more
	// members than that is split: it appears again on the following pages
	// with the next members.
	DeltaMembersPerPage int
	// Faults are the faults injected from the start (see SetFaults).
	Faults Faults
	// Attributes gives the generated users the attributes an identity
	// sync reads beyond the basic ones, each drawn from its own stream so
	// that everything else stays as generated without it: a preferred
	// language (by the culture of the name, now and then en-US), country,
	// usage location, city and office, employee ID and type, company,
	// mobile phone, sparse extension attributes, proxy addresses (about
	// one mailbox in ten has an smtp: alias; a few aliases clash with
	// another user's alias or primary address, at least one with a
	// primary when there are two mailboxes; some SIP: and X500:), a
	// manager (the managers form a tree, without cycles) and mailbox
	// purpose "user" for members with mail.
	//
	// Guarantee: when at least four groups besides "All Company" are not
	// Unified, the first four of them are nested three deep (A holds B,
	// B holds C, C holds D) and D holds B, a cycle. Churn then also
	// changes languages, managers, aliases and group nesting.
	Attributes bool
	// Resources is the number of resource accounts appended after the
	// users: shared, room and equipment mailboxes with mail and a
	// mailbox purpose, unlicensed, most of them disabled (as Exchange
	// creates them), in no group. 0 means none.
	Resources int

	// StateFile, when set, keeps the tenant across restarts: New loads
	// it from this file when the file exists (and was generated with the
	// same Users, Groups, Seed, TenantDomain and TenantID), or else
	// generates the tenant and writes the file; every change rewrites it.
	// Without it every start generates the tenant afresh, so a client's
	// state from an earlier run no longer matches the tenant.
	StateFile string
}

var domainRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$`)

// withDefaults validates c and returns it with defaults filled in.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.Users < 0 || c.Users > MaxUsers {
		errs = append(errs, fmt.Errorf("Users must be between 0 and %d, got %d", MaxUsers, c.Users))
	}
	if c.Groups < 0 || c.Groups > MaxGroups {
		errs = append(errs, fmt.Errorf("Groups must be between 0 and %d, got %d", MaxGroups, c.Groups))
	}
	if c.Resources < 0 || c.Resources > MaxResources {
		errs = append(errs, fmt.Errorf("Resources must be between 0 and %d, got %d", MaxResources, c.Resources))
	}
	if c.TenantDomain == "" {
		c.TenantDomain = DefaultTenantDomain
	}
	c.TenantDomain = strings.ToLower(c.TenantDomain)
	if len(c.TenantDomain) > 253 || !domainRE.MatchString(c.TenantDomain) {
		errs = append(errs, fmt.Errorf("TenantDomain %q is not a domain name like contoso.onmicrosoft.com", c.TenantDomain))
	}
	ids := newPRNG(c.Seed, "ids")
	defTenant, defSecret := ids.guid(), ids.guid()
	if c.TenantID == "" {
		c.TenantID = defTenant
	}
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.SecretID == "" {
		c.SecretID = defSecret
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"TenantID", &c.TenantID}, {"ClientID", &c.ClientID}, {"SecretID", &c.SecretID}} {
		if !isGUID(*f.v) {
			errs = append(errs, fmt.Errorf("%s %q is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", f.name, *f.v))
		}
		*f.v = strings.ToLower(*f.v)
	}
	switch {
	case c.ClientSecret == "":
		errs = append(errs, errors.New("ClientSecret is required"))
	case strings.TrimSpace(c.ClientSecret) != c.ClientSecret:
		errs = append(errs, errors.New("ClientSecret has leading or trailing whitespace"))
	case strings.EqualFold(c.ClientSecret, c.SecretID):
		errs = append(errs, errors.New("ClientSecret must be the secret Value, not equal to SecretID"))
	}
	if c.Roles == nil {
		c.Roles = DefaultRoles()
	} else {
		c.Roles = append([]string{}, c.Roles...)
	}
	for _, r := range c.Roles {
		if r == "" || strings.ContainsAny(r, " \t\r\n,") {
			errs = append(errs, fmt.Errorf("role %q is not a permission name like User.Read.All", r))
		}
	}
	switch {
	case c.TokenLifetime == 0:
		c.TokenLifetime = DefaultTokenLifetime
	case c.TokenLifetime < 0:
		errs = append(errs, fmt.Errorf("TokenLifetime must not be negative, got %s", c.TokenLifetime))
	}
	if c.DeltaTokenTTL < 0 {
		errs = append(errs, fmt.Errorf("DeltaTokenTTL must not be negative, got %s", c.DeltaTokenTTL))
	}
	if c.DeltaTokenExpiry == "" {
		c.DeltaTokenExpiry = ExpiryGone
	} else if _, err := ParseExpiryMode(string(c.DeltaTokenExpiry)); err != nil {
		errs = append(errs, err)
	}
	switch {
	case c.DeltaMembersPerPage == 0:
		c.DeltaMembersPerPage = DefaultDeltaMembersPerPage
	case c.DeltaMembersPerPage < 0:
		errs = append(errs, fmt.Errorf("DeltaMembersPerPage must be positive, got %d", c.DeltaMembersPerPage))
	}
	if err := c.Faults.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("graphsim: invalid config: %w", err)
	}
	return c, nil
}

// orgName is the organization's display name derived from the domain
// ("contoso.onmicrosoft.com" -> "Contoso").
func orgName(domain string) string {
	label, _, _ := strings.Cut(domain, ".")
	if label == "" {
		return domain
	}
	return strings.ToUpper(label[:1]) + label[1:]
}

// customDomain is the vanity mail domain of the organization
// ("contoso.onmicrosoft.com" -> "contoso.com"); other domains are their own.
func customDomain(domain string) string {
	if label, ok := strings.CutSuffix(domain, ".onmicrosoft.com"); ok && !strings.Contains(label, ".") {
		return label + ".com"
	}
	return domain
}
