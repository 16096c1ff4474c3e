// Package azuread is the Microsoft Entra ID (Azure AD) directory connector:
// it reads users, groups of the kinds a sync asks for (Microsoft 365,
// security, mail-enabled security, distribution; by default Microsoft 365
// only) and their user and group members from Microsoft Graph with an app
// registration's client secret, and serves them through the connector.v1
// plugin contract. It reads with Graph delta queries: the first sync reads
// the whole directory and returns delta links as its cursor, later syncs
// read only what changed (see delta.go); retries are retry.go's.
//
// Authentication uses azidentity's ClientSecretCredential and Graph calls
// use msgraph-sdk-go, both over one TLS configuration (system roots plus
// ca_file) and against the configured authority host and Graph URL, so
// national clouds, TLS-inspecting proxies and graphsim work the same way.
// The client secret and the tokens never appear in logs, errors or check
// results.
package azuread

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/groups"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
	"go.uber.org/zap"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// Name and Version of the connector, as Describe reports them.
const (
	Name    = "azuread"
	Version = "0.1.0"
)

// Names of the TestConnection checks, in the order they run.
const (
	CheckConfiguration = "configuration"
	CheckToken         = "token"
	CheckReadUsers     = "read users"
	CheckReadGroups    = "read groups and members"
	// CheckMailboxes never fails the test: without MailboxSettings.Read
	// syncs work, but cannot tell shared, room and equipment mailboxes
	// from people's, so it passes with a warning.
	CheckMailboxes = "read mailbox purposes"
)

// mailboxProbeUsers is how many users the connection test asks the
// mailbox purpose of: enough to meet one with a mailbox in most tenants.
const mailboxProbeUsers = 5

// Connector is the Azure AD connector. It holds no state between calls;
// every call builds its clients from the config it is given.
type Connector struct {
	log  *zap.Logger
	opts clientOptions
}

var _ connector.Connector = (*Connector)(nil)

// New returns a Connector logging to log (nil: no logging).
func New(log *zap.Logger) *Connector {
	if log == nil {
		log = zap.NewNop()
	}
	return &Connector{log: log}
}

// Describe implements connector.Connector.
func (c *Connector) Describe(context.Context) (*connectorv1.DescribeResponse, error) {
	return &connectorv1.DescribeResponse{
		Name:         Name,
		Description:  "Microsoft Entra ID (Azure AD): users, groups (Microsoft 365, security, mail-enabled security, distribution) and their members, read through Microsoft Graph delta queries (a full read first, then only changes) with an app registration's client secret (application permissions User.Read.All and GroupMember.Read.All).",
		Version:      Version,
		ConfigFields: ConfigFields(),
		// Entra's Microsoft 365 groups: what the admin center calls groups
		// people join, and what dirsync synced before kinds were chosen.
		DefaultGroupKinds: []string{connector.GroupUnified},
		Attributes:        ReadableAttributes(),
		// Graph says a mailbox's purpose only per user (mailboxSettings):
		// the host asks ClassifyMailboxes about the users it keeps.
		MailboxPurpose: true,
	}, nil
}

// ValidateConfig implements connector.Connector. It reads ca_file and
// client_secret_file but never the network.
func (c *Connector) ValidateConfig(_ context.Context, raw *connectorv1.Config) ([]*connectorv1.ConfigProblem, error) {
	_, err := ParseConfig(raw)
	var ce *ConfigError
	switch {
	case err == nil:
		return nil, nil
	case errors.As(err, &ce):
		return ce.Problems, nil
	default:
		return nil, err
	}
}

// TestConnection implements connector.Connector. It runs the checks
// "configuration", "token", "read users", "read groups and members" and
// "read mailbox purposes" in order and stops at the first that fails; the
// last only warns.
func (c *Connector) TestConnection(ctx context.Context, raw *connectorv1.Config) (*connectorv1.TestConnectionResponse, error) {
	resp := &connectorv1.TestConnectionResponse{}
	pass := func(name, detail string) {
		resp.Checks = append(resp.Checks, &connectorv1.Check{Name: name, Ok: true, Detail: detail})
		c.log.Info("connection check passed", zap.String("check", name), zap.String("detail", detail))
	}
	fail := func(name string, p *Problem) (*connectorv1.TestConnectionResponse, error) {
		resp.Checks = append(resp.Checks, &connectorv1.Check{Name: name, Detail: p.Detail, Remedy: p.Remedy, Code: p.Code})
		c.log.Warn("connection check failed", zap.String("check", name), zap.String("code", p.Code), zap.String("detail", p.Detail))
		return resp, nil
	}

	cfg, err := ParseConfig(raw)
	if err != nil {
		return fail(CheckConfiguration, &Problem{Code: CodeInvalidConfig, Detail: err.Error(), Remedy: "Fix the connector's config block in plugins.hcl.", err: err})
	}
	g, err := newGraphClient(cfg, c.log, c.opts)
	if err != nil {
		return fail(CheckConfiguration, &Problem{Code: CodeInvalidConfig, Detail: err.Error(), Remedy: "Fix the connector's config block in plugins.hcl.", err: err})
	}
	defer g.close()
	pass(CheckConfiguration, fmt.Sprintf("tenant %s, client ID %s, authority %s, Graph %s", cfg.Tenant, cfg.ClientID, cfg.AuthorityHost, cfg.GraphURL))

	tok, err := g.token(ctx)
	if err != nil {
		return fail(CheckToken, explain(err, stageToken, cfg, g.secret))
	}
	detail := "token acquired for tenant " + cfg.Tenant
	if roles := tokenRoles(tok.Token); len(roles) > 0 {
		detail += " (application permissions: " + strings.Join(roles, ", ") + ")"
	}
	pass(CheckToken, detail)

	top, probe := int32(1), int32(mailboxProbeUsers)
	us, err := g.sdk.Users().Get(ctx, &users.UsersRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.UsersRequestBuilderGetQueryParameters{Select: []string{"id"}, Top: &probe},
	})
	if err != nil {
		return fail(CheckReadUsers, explain(err, stageUsers, cfg, g.secret))
	}
	var userIDs []string
	if us != nil {
		for _, u := range us.GetValue() {
			if id := deref(u.GetId()); id != "" {
				userIDs = append(userIDs, id)
			}
		}
	}
	if len(userIDs) == 0 {
		pass(CheckReadUsers, "users readable (the tenant has none)")
	} else {
		pass(CheckReadUsers, "users readable")
	}

	filter := unifiedFilter
	gs, err := g.sdk.Groups().Get(ctx, &groups.GroupsRequestBuilderGetRequestConfiguration{
		QueryParameters: &groups.GroupsRequestBuilderGetQueryParameters{Filter: &filter, Select: []string{"id", "displayName"}, Top: &top},
	})
	if err != nil {
		return fail(CheckReadGroups, explain(err, stageGroups, cfg, g.secret))
	}
	if gs == nil || len(gs.GetValue()) == 0 || deref(gs.GetValue()[0].GetId()) == "" {
		pass(CheckReadGroups, "groups readable (the tenant has no Microsoft 365 group, so reading members was not tried)")
	} else {
		first := gs.GetValue()[0]
		_, err = g.sdk.Groups().ByGroupId(deref(first.GetId())).Members().Get(ctx, &groups.ItemMembersRequestBuilderGetRequestConfiguration{
			QueryParameters: &groups.ItemMembersRequestBuilderGetQueryParameters{Select: []string{"id"}, Top: &top},
		})
		if err != nil {
			return fail(CheckReadGroups, explain(err, stageMembers, cfg, g.secret))
		}
		pass(CheckReadGroups, fmt.Sprintf("groups readable; members of %q readable", deref(first.GetDisplayName())))
	}

	resp.Ok = true
	if ch := c.checkMailboxes(ctx, g, userIDs); ch.Warning {
		resp.Checks = append(resp.Checks, ch)
		c.log.Warn("connection check warns", zap.String("check", ch.Name), zap.String("code", ch.Code), zap.String("detail", ch.Detail))
	} else {
		pass(ch.Name, ch.Detail)
	}
	return resp, nil
}

// checkMailboxes asks the mailbox purpose of a few users, as a sync's
// classification would: the check warns when the app may not read
// mailbox settings or Graph would not say, and passes otherwise.
func (c *Connector) checkMailboxes(ctx context.Context, g *graphClient, ids []string) *connectorv1.Check {
	if len(ids) == 0 {
		return &connectorv1.Check{Name: CheckMailboxes, Ok: true, Detail: "not tried: the tenant has no users"}
	}
	out := map[string]string{}
	err := readPurposes(ctx, g, c.log, ids, out)
	var un *unavailableError
	var p *Problem
	switch {
	case errors.As(err, &un):
		return &connectorv1.Check{Name: CheckMailboxes, Ok: true, Warning: true, Code: un.problem.Code,
			Detail: un.problem.Detail + "; syncs work, but exclude_mailboxes can only guess (a disabled account with a mailbox is taken for a shared one where include_disabled = true)",
			Remedy: un.problem.Remedy}
	case err != nil:
		if !errors.As(err, &p) {
			p = explain(err, stageMailboxes, g.cfg, g.secret)
		}
		return &connectorv1.Check{Name: CheckMailboxes, Ok: true, Warning: true, Code: p.Code,
			Detail: "mailbox purposes could not be read: " + p.Detail, Remedy: p.Remedy}
	case len(out) == 0:
		return &connectorv1.Check{Name: CheckMailboxes, Ok: true,
			Detail: fmt.Sprintf("none of the first %d users has an Exchange Online mailbox, so the MailboxSettings.Read permission was not proven", len(ids))}
	}
	return &connectorv1.Check{Name: CheckMailboxes, Ok: true, Detail: "mailbox purposes readable (MailboxSettings.Read granted)"}
}

// tokenRoles returns the sorted "roles" claim of a JWT access token (the
// application permissions granted), or nil when it cannot be read. The
// token is not verified: this is only a hint for the admin.
func tokenRoles(token string) []string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil
	}
	var claims struct {
		Roles []string `json:"roles"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return nil
	}
	sort.Strings(claims.Roles)
	return claims.Roles
}

// Sync implements connector.Connector with Graph delta queries (see
// delta.go).
//
//   - No cursor, or req.full: an initial delta round reads the whole
//     directory; the last batch has complete = true and the cursor.
//   - A cursor: a round from its delta links sends only what changed; the
//     last batch has complete = false and the next cursor.
//   - A cursor that cannot be used (unreadable, of another tenant, group
//     types or attributes) or that Graph refuses (expired delta token: 410,
//     syncStateNotFound, resyncRequired): a full read inside the same
//     Sync, ending complete = true with resync_reason saying why. A batch
//     with restart = true first tells the host to forget what was sent
//     before Graph refused.
//
// Users carry their proxyAddresses and the attributes of
// req.attributes that this connector reads (see attributes.go). Groups
// are those of the kinds in req.group_types (empty: Microsoft 365
// groups only), with their user and group members (nesting); a kind that connector.GroupKinds does not list fails the
// sync with ErrUnknownGroupType before anything is read. A failure sends
// no final batch: the daemon keeps its cursor for the next sync.
func (c *Connector) Sync(ctx context.Context, req *connectorv1.SyncRequest, send func(*connectorv1.SyncBatch) error) error {
	start := time.Now()
	kinds, err := parseGroupKinds(req.GetGroupTypes())
	if err != nil {
		return fmt.Errorf("azuread sync: %w", err)
	}
	cfg, err := ParseConfig(req.GetConfig())
	if err != nil {
		return fmt.Errorf("azuread sync: %w", err)
	}
	log := c.log.With(zap.String("job", req.GetJobId()), zap.String("tenant", cfg.Tenant))
	g, err := newGraphClient(cfg, log, c.opts)
	if err != nil {
		return fmt.Errorf("azuread sync: %w", err)
	}
	defer g.close()

	attrs := wantAttributes(req.GetAttributes())
	var from *cursor
	reason := ""
	switch {
	case req.GetFull():
	case req.GetCursor() == "":
	default:
		from, reason = parseCursor(req.GetCursor(), cfg, kinds, attrs)
	}
	mode := "incremental"
	if from == nil {
		mode = "full"
	}
	log.Info("sync started", zap.String("mode", mode), zap.Bool("requestedFull", req.GetFull()), zap.String("graph", cfg.GraphURL),
		zap.Strings("groupTypes", kinds.names()), zap.Strings("attributes", attrs), zap.Duration("retryBudget", cfg.RetryBudget))
	if reason != "" {
		log.Info("reading the whole directory", zap.String("reason", reason))
	}

	r := &deltaReader{g: g, log: log, kinds: kinds, attrs: attrs}
	out := newBatcher(send, g.stats)
	out.ctx = ctx
	g.stats.onRetry = out.sendProgress
	next, complete, reason, err := c.read(ctx, r, out, from, reason)
	if err == nil {
		err = out.finish(next.encode(), complete, reason)
	}
	if err != nil {
		var lost *sendError
		if !errors.As(err, &lost) {
			out.sendProgress(nil)
		}
		log.Warn("sync failed", zap.Error(err), zap.Duration("after", time.Since(start)))
		return err
	}
	p, batches := out.snapshot()
	log.Info("sync finished", zap.Bool("complete", complete), zap.String("resyncReason", reason),
		zap.Int64("users", p.Users), zap.Int64("groups", p.Groups),
		zap.Int64("memberships", p.Memberships), zap.Int64("skippedMembers", p.SkippedMembers),
		zap.Any("rejected", p.Rejected), zap.Any("sanitized", p.Sanitized), zap.Int("batches", batches), zap.Int64("requests", g.stats.requests.Load()),
		zap.Int64("retries", g.stats.retries.Load()), zap.Int64("throttleWaitMs", g.stats.throttleWaitMS.Load()),
		zap.Duration("took", time.Since(start)))
	return nil
}

// read runs an incremental round from from, or a full one when from is
// nil or Graph refuses its links, and returns the next cursor, whether
// the read was complete, and the resync reason.
func (c *Connector) read(ctx context.Context, r *deltaReader, out *batcher, from *cursor, reason string) (*cursor, bool, string, error) {
	if from != nil {
		next, err := r.round(ctx, out, from)
		var exp *expiredError
		switch {
		case err == nil:
			return next, false, "", nil
		case !errors.As(err, &exp):
			return nil, false, "", err
		}
		reason = exp.reason
		r.log.Info("Graph refused the delta token; reading the whole directory", zap.String("reason", reason))
		if err := out.restart(); err != nil {
			return nil, false, "", err
		}
	}
	for restarts := 0; ; restarts++ {
		if restarts > 0 {
			if err := out.restart(); err != nil {
				return nil, false, "", err
			}
		}
		next, err := r.round(ctx, out, nil)
		var exp *expiredError
		switch {
		case err == nil:
			return next, true, reason, nil
		case !errors.As(err, &exp):
			return nil, false, "", err
		case restarts >= maxFullRestarts:
			return nil, false, "", fmt.Errorf("reading the whole directory: Graph asked to start over %d times: %w", restarts+1, exp)
		}
		r.log.Warn("Graph asked to restart the full read", zap.String("reason", exp.reason))
		if reason == "" {
			reason = "Graph asked to restart the full read: " + exp.reason
		}
	}
}
