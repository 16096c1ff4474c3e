package ldap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// Names of the checks TestConnection runs, in their order.
const (
	CheckConfig  = "config"  // the config block parses and validates
	CheckConnect = "connect" // dial, and TLS (ldaps:// or StartTLS)
	CheckBind    = "bind"    // the simple bind as bind_dn
	CheckFlavor  = "flavor"  // the rootDSE read, the flavor detected or configured
	CheckBaseDN  = "base_dn" // base_dn exists on this server
	CheckUsers   = "users"   // user_filter finds a user whose ID and mail can be read
	CheckGroups  = "groups"  // group_filter runs; a group found has a readable ID
	// CheckChanges says whether syncs after the first can read only the
	// changes. It never fails: without that, every sync reads the whole
	// directory, which works, and its detail says what to grant.
	CheckChanges = "changes"
)

// TestConnection implements connector.Connector. It runs the checks
// config, connect, bind, flavor, base_dn, users, groups and changes in order and
// stops at the first that fails, since each needs the ones before; the
// response is ok only when all passed. What the admin can fix is a
// failed check; the error is for a ctx canceled or expired, when the test
// stopped before an answer.
func (c *Connector) TestConnection(ctx context.Context, raw *connectorv1.Config) (*connectorv1.TestConnectionResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, stopped(err)
	}
	t := &connTest{log: c.log, resp: &connectorv1.TestConnectionResponse{}}
	cfg, err := ParseConfig(raw)
	if err != nil {
		// decode applies what it can of a bad block: enough to know the
		// password to keep out of the texts.
		if partial, _ := decode(raw); partial != nil {
			t.password = partial.BindPassword.Reveal()
		}
		t.fail(CheckConfig, configFailure(err))
		return t.resp, nil
	}
	// A password file that cannot be read is open's failure to explain.
	t.password, _ = cfg.Password()
	t.pass(CheckConfig, fmt.Sprintf("%s, %s, base_dn %q", cfg.URL, account(cfg), cfg.BaseDN))

	s, err := open(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil, stopped(ctx.Err())
		}
		t.openFailed(cfg, err)
		return t.resp, nil
	}
	defer s.close()
	t.pass(CheckConnect, connectDetail(cfg))
	t.pass(CheckBind, "bound as "+account(cfg))
	t.pass(CheckFlavor, flavorDetail(s))

	for _, step := range []struct {
		name string
		run  func(context.Context) (string, error)
	}{
		{CheckBaseDN, s.checkBaseDN},
		{CheckUsers, s.checkUsers},
		{CheckGroups, s.checkGroups},
		{CheckChanges, s.checkChanges},
	} {
		detail, err := step.run(ctx)
		if ctx.Err() != nil {
			return nil, stopped(ctx.Err())
		}
		if err != nil {
			t.fail(step.name, asFailure(err, stageOf(step.name), cfg, t.password))
			return t.resp, nil
		}
		t.pass(step.name, detail)
	}
	t.resp.Ok = true
	return t.resp, nil
}

// stopped is TestConnection's error for a ctx that ended: the test did not
// run to an answer, which no check can say.
func stopped(err error) error {
	return fmt.Errorf("ldap connection test stopped: %w", err)
}

// connTest collects the checks of one TestConnection.
type connTest struct {
	log      *zap.Logger
	resp     *connectorv1.TestConnectionResponse
	password string // redacted from every text, whatever produced it
}

func (t *connTest) pass(name, detail string) {
	detail = redact(detail, t.password)
	t.resp.Checks = append(t.resp.Checks, &connectorv1.Check{Name: name, Ok: true, Detail: detail})
	t.log.Info("connection check passed", zap.String("check", name), zap.String("detail", detail))
}

func (t *connTest) fail(name string, f *Failure) {
	ch := f.Check(name)
	ch.Detail, ch.Remedy = redact(ch.Detail, t.password), redact(ch.Remedy, t.password)
	t.resp.Checks = append(t.resp.Checks, ch)
	t.log.Warn("connection check failed", zap.String("check", name), zap.String("code", ch.Code), zap.String("detail", ch.Detail))
}

// openFailed files open's failure under its check, after passing the
// checks open got through: a bind refused means the connection worked.
func (t *connTest) openFailed(cfg *Config, err error) {
	f := asFailure(err, StageConnect, cfg, t.password)
	name := CheckConnect
	switch f.stage {
	case StageBind:
		name = CheckBind
	case StageRootDSE:
		name = CheckFlavor
	}
	// Failures without a stage (ca_file or bind_password_file unreadable,
	// which ParseConfig had just read) happen before dialing: connect.
	if name != CheckConnect {
		t.pass(CheckConnect, connectDetail(cfg))
	}
	if name == CheckFlavor {
		t.pass(CheckBind, "bound as "+account(cfg))
	}
	t.fail(name, f)
}

// asFailure returns err's *Failure, or explains err as a failure of st.
func asFailure(err error, st Stage, cfg *Config, password string) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	return Classify(st, err, cfg, password)
}

func stageOf(check string) Stage {
	switch check {
	case CheckUsers:
		return StageUsers
	case CheckGroups:
		return StageGroups
	}
	return StageBaseDN
}

// configFailure names the keys at fault.
func configFailure(err error) *Failure {
	var ce *ConfigError
	var keys []string
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			if k := p.GetField(); k != "" && !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	remedy := "Fix the connector's config block in plugins.hcl as each problem says."
	if len(keys) > 0 {
		remedy = fmt.Sprintf("Fix %s in the connector's config block in plugins.hcl as each problem says.", strings.Join(keys, ", "))
	}
	return &Failure{Code: CodeInvalidConfig, Detail: err.Error(), Remedy: remedy, err: err}
}

// connectDetail says how the connection is protected: a plain ldap://
// passes, but the admin should know the password crossed unencrypted.
func connectDetail(cfg *Config) string {
	roots := "the system's CAs"
	if cfg.CAFile != "" {
		roots = "ca_file " + cfg.CAFile + " and the system's CAs"
	}
	switch {
	case strings.HasPrefix(strings.ToLower(cfg.URL), "ldaps://"):
		return fmt.Sprintf("connected to %s over TLS; its certificate verified against %s", server(cfg), roots)
	case cfg.StartTLS:
		return fmt.Sprintf("connected to %s and upgraded to TLS with StartTLS; its certificate verified against %s", server(cfg), roots)
	}
	return fmt.Sprintf("connected to %s without TLS: the bind password crosses the network unencrypted (use ldaps:// or start_tls = true)", server(cfg))
}

// flavorDetail says which flavor, how it was learnt, and what the rootDSE
// tells of the server.
func flavorDetail(s *session) string {
	detail := flavorName(s.flavor) + " (detected from the rootDSE)"
	if s.cfg.Flavor != FlavorUnknown {
		detail = flavorName(s.flavor) + " (configured by flavor)"
		// A wrong flavor reads the wrong attributes: worth a word.
		if d := DetectFlavor(s.rootDSE); d != FlavorUnknown && d != s.flavor {
			detail += "; but the rootDSE looks like " + flavorName(d)
		}
	}
	if v := serverVersion(s.rootDSE); v != "" {
		detail += "; server: " + v
	}
	return detail
}

func flavorName(f Flavor) string {
	switch f {
	case FlavorActiveDirectory:
		return "Active Directory"
	case FlavorOpenLDAP:
		return "OpenLDAP"
	}
	return string(f)
}

// adLevels names Active Directory's domainControllerFunctionality levels
// by the Windows Server release that introduced them.
var adLevels = map[string]string{
	"0": "Windows 2000", "1": "Windows Server 2003 interim", "2": "Windows Server 2003", "3": "Windows Server 2008",
	"4": "Windows Server 2008 R2", "5": "Windows Server 2012", "6": "Windows Server 2012 R2", "7": "Windows Server 2016", "10": "Windows Server 2025",
}

// serverVersion is what the rootDSE says of the server's make: its
// vendor (Samba and some others publish one; Microsoft's and OpenLDAP's
// do not) and Active Directory's functional level; "" when neither.
func serverVersion(rootDSE *goldap.Entry) string {
	if rootDSE == nil {
		return ""
	}
	var parts []string
	if v := strings.TrimSpace(rootDSE.GetEqualFoldAttributeValue("vendorName")); v != "" {
		parts = append(parts, v)
	}
	if v := strings.TrimSpace(rootDSE.GetEqualFoldAttributeValue("vendorVersion")); v != "" {
		parts = append(parts, "version "+v)
	}
	if v := strings.TrimSpace(rootDSE.GetEqualFoldAttributeValue("domainControllerFunctionality")); v != "" {
		level := "domain controller functional level " + v
		if name, ok := adLevels[v]; ok {
			level += " (" + name + ")"
		}
		parts = append(parts, level)
	}
	return clip(strings.Join(strings.Fields(strings.Join(parts, ", ")), " "), 200)
}

// checkBaseDN reads base_dn itself: a search under a DN that is not there
// fails every search of the sync with the same answer.
func (s *session) checkBaseDN(context.Context) (string, error) {
	e, err := s.readBase(StageBaseDN, s.cfg.BaseDN, []string{"objectClass"})
	if err != nil {
		return "", err
	}
	classes := e.GetEqualFoldAttributeValues("objectClass")
	detail := fmt.Sprintf("base_dn %q exists", e.DN)
	if len(classes) > 0 {
		detail += " (" + clip(strings.Join(classes, ", "), 200) + ")"
	}
	return detail, nil
}

// checkUsers reads one user with the attributes a sync reads, and if it
// has no mail one that has: a user without an ID cannot be synced, and
// users without mail are what a bind account that may not read mail sees.
func (s *session) checkUsers(ctx context.Context) (string, error) {
	d := s.cfg.Decoder(s.flavor)
	filter := s.cfg.UserFilter(s.flavor)
	e, err := s.firstEntry(ctx, StageUsers, filter, d.UserAttributes())
	switch {
	case err != nil:
		return "", err
	case e == nil:
		return "", &Failure{
			Code:   CodeNoUsers,
			Detail: fmt.Sprintf("user_filter %s matched no user under base_dn %q (or none that %s may see)", filter, s.cfg.BaseDN, account(s.cfg)),
			Remedy: "Check base_dn (the users must be below it) and user_filter (try it with ldapsearch, or as a saved query in Active Directory Users and Computers); the bind account must be allowed to see the users.",
			stage:  StageUsers,
		}
	}
	var missing []string
	if len(rawValues(e, d.Attrs.ID)) == 0 {
		missing = append(missing, d.Attrs.ID)
	}
	mail, noMail := d.Attrs.Mail, ""
	if firstValue(e, mail) == "" {
		// The first user may just have no mail (Administrator, service
		// accounts): look for one that has.
		withMail := fmt.Sprintf("(&%s(%s=*))", filter, mail)
		found, err := s.firstEntry(ctx, StageUsers, withMail, []string{d.Attrs.ID, mail})
		switch {
		case err != nil:
			return "", err
		case found == nil:
			missing = append(missing, mail)
			noMail = fmt.Sprintf("; no user matching user_filter under base_dn %q has a %s it may read", s.cfg.BaseDN, mail)
		case firstValue(found, mail) == "":
			missing = append(missing, mail)
		default:
			e = found
		}
	}
	if len(missing) > 0 {
		f := MissingReadAccess(StageUsers, missing, s.cfg)
		f.Detail += noMail
		return "", f
	}
	if f := s.checkID(StageUsers, d, e); f != nil {
		return "", f
	}
	return fmt.Sprintf("user_filter %s finds users under base_dn, e.g. %q (%s %s)", filter, e.DN, mail, firstValue(e, mail)), nil
}

// checkGroups reads one group with the attributes a sync reads. A
// directory without groups is valid: users sync without them.
func (s *session) checkGroups(ctx context.Context) (string, error) {
	d := s.cfg.Decoder(s.flavor)
	filter := s.cfg.GroupFilter(s.flavor)
	e, err := s.firstEntry(ctx, StageGroups, filter, d.GroupAttributes())
	switch {
	case err != nil:
		return "", err
	case e == nil:
		return fmt.Sprintf("group_filter %s matched no group under base_dn %q: users will sync without groups", filter, s.cfg.BaseDN), nil
	}
	if f := s.checkID(StageGroups, d, e); f != nil {
		return "", f
	}
	return fmt.Sprintf("group_filter %s finds groups under base_dn, e.g. %q", filter, e.DN), nil
}

// checkChanges tells whether incremental syncs will read only changes:
// slapd's syncprov answers a sync request with a cookie; an Active
// Directory account must be able to read the Deleted Objects container.
func (s *session) checkChanges(ctx context.Context) (string, error) {
	if s.flavor == FlavorActiveDirectory {
		ok, err := s.readsDeleted()
		switch {
		case err != nil:
			return "", err
		case !ok:
			return "syncs after the first will read the whole directory: " + deletedObjectsHidden(s.cfg), nil
		}
		usn, _ := strconv.ParseInt(s.rootDSE.GetEqualFoldAttributeValue(attrHighestUSN), 10, 64)
		return fmt.Sprintf("syncs after the first read only changes: entries with a uSNChanged above the last sync's (this DC is at %d) and the tombstones in %s", usn, s.deletedObjects()), nil
	}
	r := &dirReader{s: s, dec: s.cfg.Decoder(s.flavor)}
	c, err := r.mark(ctx)
	switch {
	case err != nil:
		return "", err
	case c.Users == "":
		return "syncs after the first will read the whole directory: " + reasonNoSyncprov, nil
	}
	return "syncs after the first read only changes: the server's syncprov overlay answers content synchronization (RFC 4533) with a cookie", nil
}

// checkID explains an entry whose ID attribute is missing (not readable)
// or is not a GUID (attr_id names another attribute): a sync would drop
// every such user or group.
func (s *session) checkID(st Stage, d *Decoder, e *goldap.Entry) *Failure {
	if len(rawValues(e, d.Attrs.ID)) == 0 {
		return MissingReadAccess(st, []string{d.Attrs.ID}, s.cfg)
	}
	if _, ok := d.id(e); ok {
		return nil
	}
	return &Failure{
		Code:   CodeInvalidConfig,
		Detail: fmt.Sprintf("the %s of %q is not a GUID, so a sync would drop every one of the %s", d.Attrs.ID, e.DN, stageObjects(st)),
		Remedy: fmt.Sprintf("Set attr_id to an attribute holding a unique GUID (Active Directory: objectGUID; OpenLDAP: entryUUID), or remove it for the default; %s is not one.", d.Attrs.ID),
		stage:  st,
	}
}

// firstEntry returns one entry matching filter under base_dn, nil when
// none does. It asks for one entry in both ways a server may honour: a
// size limit of 1 (Samba ignores it) and a page of 1 (the paged search is
// left open; closing the session ends it).
func (s *session) firstEntry(ctx context.Context, st Stage, filter string, attrs []string) (*goldap.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	req := goldap.NewSearchRequest(s.cfg.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 1, int(s.cfg.Timeout/time.Second), false,
		filter, attrs, []goldap.Control{goldap.NewControlPaging(1)})
	res, err := s.conn.Search(req)
	s.requests++
	// More matches than the limit is the answer hoped for.
	if err != nil && !(goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) && res != nil && len(res.Entries) > 0) {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, Classify(st, err, s.cfg, s.password)
	}
	if len(res.Entries) == 0 {
		return nil, nil
	}
	return res.Entries[0], nil
}

// firstValue is the first value of the named attribute, "" when none.
func firstValue(e *goldap.Entry, name string) string {
	if e == nil || name == "" {
		return ""
	}
	return e.GetEqualFoldAttributeValue(name)
}
