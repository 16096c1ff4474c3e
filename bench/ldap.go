package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	ldapconn "github.com/dirsync/dirsync/connectors/ldap"
	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/internal/testenv"
)

// The LDAP connector's scenario (issue 16): a Samba Active Directory
// domain controller holding s.LDAPUsers users (ldapDir), synced by a
// fresh dirsyncd through the dirsync-ldap plugin:
//
//   - a first full sync, beside a raw go-ldap client making the same
//     paged searches (rawldap.go), the faster of a run before and one
//     after dirsync's; the requests beside the raw client's; peak RSS of
//     the daemon and of the plugin. The recipients must be the
//     directory's enabled users with mail;
//   - s.Changes changes (ldapDir.changes), then an incremental sync,
//     which must read changes only (uSNChanged above the last sync's
//     high-water mark, and the tombstones), beside the raw client's
//     searches of the same changes; its recipient events, one per
//     changed user.
//
// The connection is plain ldap:// with a simple bind as the domain's
// Administrator: reading the Deleted Objects container, which an
// incremental read needs to see deletions, takes a Domain Admin unless
// granted.

// ldapScenarios is the LDAP connector's scenario.
func ldapScenarios() []Scenario {
	return []Scenario{{Name: "ldap", Run: runLDAP}}
}

// The LDAP rows' targets: the full sync's is the Graph full sync's; an
// incremental read's figures are reported (see runLDAP's rows).
const (
	targetLDAPFullWall     = targetFullWall
	targetLDAPFullRequests = targetFullRequests
)

// ldapPlugin is the LDAP connector's plugin binary in env.Bin.
const ldapPlugin = "dirsync-ldap"

// runLDAP is the ldap scenario.
func runLDAP(ctx context.Context, env *Env, s Sizes) ([]Row, error) {
	if _, err := os.Stat(filepath.Join(env.Bin, ldapPlugin)); err != nil {
		return nil, fmt.Errorf("%w: run `make build` (it builds %s)", err, ldapPlugin)
	}
	dir := newLDAPDir(s.LDAPUsers)
	srv, seeded, err := startLDAPDir(env, dir)
	if err != nil {
		return nil, err
	}
	defer func() { _ = srv.Close() }()
	r, err := startLDAPRig(ctx, env, srv)
	if err != nil {
		return nil, err
	}
	defer r.close()

	full, err := ldapFullSync(ctx, env, r, srv, dir)
	if err != nil {
		return nil, err
	}
	inc, err := ldapIncremental(ctx, env, r, srv, dir, s.Changes)
	if err != nil {
		return nil, err
	}
	// The raw append of the full sync's events, for its note; last, so
	// that its stream is not on the server while dirsync syncs.
	app, err := r.rawAppendOf(ctx, env, full.run.job.ID)
	if err != nil {
		return nil, err
	}
	full.append = app
	return append(full.rows(dir, seeded), inc.rows(full)...), nil
}

// startLDAPDir starts a Samba AD DC holding dir, and says how it was
// seeded. Where Samba cannot run, the error is *Skipped and says how to
// install it.
func startLDAPDir(env *Env, dir ldapDir) (*testenv.LDAPServer, string, error) {
	env.Logf("Samba AD DC: seeding %d users and %d groups (LMDB store, added offline through Samba's Python bindings), then starting it", dir.users, dir.groups)
	start := time.Now()
	srv, err := testenv.LaunchSambaDCWith(env.Dir, "", testenv.SambaOptions{LMDB: true, BulkLDIF: dir.ldif(), Logf: env.Logf})
	if errors.Is(err, testenv.ErrSambaUnavailable) {
		return nil, "", &Skipped{Reason: fmt.Sprintf("the ldap scenario needs a Samba AD DC: %v", err)}
	}
	if err != nil {
		return nil, "", err
	}
	took := time.Since(start)
	env.Logf("Samba AD DC answering on %s after %.1f s", srv.URL, took.Seconds())
	seeded := fmt.Sprintf("a Samba AD domain stored in LMDB (provision --backend-store=mdb), its %d users and %d groups added before the DC's first start through Samba's Python bindings as SYSTEM, one add per transaction, then started: %.0f s in all (over LDAP, adds slow down as the domain grows: 20,000 users took 7.5 minutes on a 2-core machine, measured once)",
		dir.users, dir.groups, took.Seconds())
	return srv, seeded, nil
}

// startLDAPRig starts a fresh dirsyncd (embedded NATS) whose connector
// Connector reads srv through the LDAP plugin, and checks the
// connection.
func startLDAPRig(ctx context.Context, env *Env, srv *testenv.LDAPServer) (*syncRig, error) {
	dir := filepath.Join(env.Dir, "daemon")
	addr, err := testenv.FreeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	// At info, to read how the daemon planned the incremental sync
	// (planNote).
	c := daemonConfig{LogLevel: "info", NATSListen: addr}
	if err := writeLDAPConfig(env, dir, srv, c); err != nil {
		return nil, err
	}
	d, err := startDaemon(ctx, env, dir, c)
	if err != nil {
		return nil, err
	}
	r := &syncRig{d: d}
	env.Logf("dirsyncd ready in %.2f s", d.Ready.Sub(d.Started).Seconds())
	res, err := d.Client.Test(ctx, Connector)
	if err != nil || !res.OK {
		r.close()
		return nil, fmt.Errorf("connector test of %s: %v %+v", srv.URL, err, res.Checks)
	}
	r.peaks = WatchPeaks(d.Cmd.Process.Pid)
	return r, nil
}

// writeLDAPConfig writes dir/plugins.hcl for a daemon whose connector
// reads srv: plain ldap://, bound as the Administrator (whose password
// is in a file beside it), base_dn ldapBase, everything else the
// connector's defaults (page_size 500).
func writeLDAPConfig(env *Env, dir string, srv *testenv.LDAPServer, c daemonConfig) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bind-password"), []byte(srv.AdminPassword+"\n"), 0o600); err != nil {
		return err
	}
	cfg := fmt.Sprintf(`daemon {
  data_dir = "./data"
  log_level = %q
}
nats { listen = %q }
plugin "ldap" { path = %q }
connector %q {
  plugin = "ldap"
  full_sync_interval = "0"
  config {
    url                = %q
    bind_dn            = %q
    bind_password_file = "./bind-password"
    base_dn            = %q
  }
}
`, c.LogLevel, c.NATSListen, filepath.Join(env.Bin, ldapPlugin), Connector, srv.URL, srv.AdminDN, ldapBase)
	return os.WriteFile(configPath(dir), []byte(cfg), 0o600)
}

// activeRecipients counts the connector's active recipients.
func activeRecipients(ctx context.Context, d *Daemon) (int, error) {
	list, err := d.Client.Recipients(ctx, api.RecipientFilter{Connector: Connector, Status: "active"})
	return len(list), err
}

// ldapFull is the measured full sync.
type ldapFull struct {
	run                syncRun
	before, after, raw rawLDAPRead // raw is the faster of before and after
	daemonMiB          float64
	pluginMiB          float64
	settledKiB         int64
	recipients         int
	append             rawAppend
}

// ldapFullSync runs the raw read, dirsync's first full sync and the raw
// read again, and checks the recipients.
func ldapFullSync(ctx context.Context, env *Env, r *syncRig, srv *testenv.LDAPServer, dir ldapDir) (*ldapFull, error) {
	f := &ldapFull{}
	var err error
	env.Logf("raw client: reading every user and group (before dirsync)")
	if f.before, err = rawLDAPFull(ctx, srv); err != nil {
		return nil, err
	}
	env.Logf("raw client: %s", f.before)
	env.Logf("dirsync: full sync of %d users and %d groups (the daemon's first)", dir.users, dir.groups)
	if f.run, err = r.sync(ctx, env, true, "LDAP full sync"); err != nil {
		return nil, err
	}
	r.stopPeaks()
	f.daemonMiB, f.pluginMiB = r.daemonMiB, r.pluginMiB
	sum := summary(f.run.job)
	if !sum.FullRead {
		return nil, fmt.Errorf("the first sync did not read the whole directory (summary fullRead false)")
	}
	if f.recipients, err = activeRecipients(ctx, r.d); err != nil {
		return nil, err
	}
	if want := dir.recipients(); f.recipients != want {
		return nil, fmt.Errorf("after the full sync: %d active recipients; the directory has %d enabled users with mail", f.recipients, want)
	}
	r.settle(ctx, env)
	f.settledKiB, _ = ProcStatus(r.d.Cmd.Process.Pid, "VmHWM")
	env.Logf("raw client: reading every user and group (after dirsync)")
	if f.after, err = rawLDAPFull(ctx, srv); err != nil {
		return nil, err
	}
	env.Logf("raw client: %s", f.after)
	f.raw = faster(f.before, f.after)
	return f, nil
}

// rows are the full sync's rows.
func (f *ldapFull) rows(dir ldapDir, seeded string) []Row {
	scenario := fmt.Sprintf("LDAP full sync, %d users / %d groups", dir.users, dir.groups)
	sum := summary(f.run.job)
	wall := f.run.wall.Seconds()
	return []Row{
		{
			Scenario: scenario, Metric: "wall time, request → COMPLETED",
			Value: wall, Floor: f.raw.Wall.Seconds(), Unit: "s",
			Target: fmt.Sprintf("≤ %.0f× floor", targetLDAPFullWall), Met: wall <= targetLDAPFullWall*f.raw.Wall.Seconds(),
			Note: fmt.Sprintf("floor: a raw go-ldap client (dial, simple bind, the connector's paged searches of users then groups with its attributes, page size %d, over the same plain ldap://), entries parsed, counted and dropped; the faster of before (%s) and after (%s) dirsync. For scale, the raw append of the job's events: %s. dirsync: %s; read %d users, %d groups, %d memberships (nested groups expanded; the directory gives %d); wrote %d directory and %d recipient events; %d active recipients, the directory's enabled users with mail; %s. The directory: %s; Samba serves on one core of the same machine",
				ldapconn.DefaultPageSize, f.before, f.after, f.append, phases(f.run.job), sum.UsersRetrieved, sum.GroupsRetrieved, sum.MembershipsRetrieved, dir.memberships(),
				sum.DirectoryEvents, recipientEvents(sum), f.recipients, f.run.cpuNote(), seeded),
		},
		{
			Scenario: scenario, Metric: "LDAP requests",
			Value: float64(f.run.requests), Floor: float64(f.raw.Requests), Unit: "req",
			Target: fmt.Sprintf("≤ %.2f× raw", targetLDAPFullRequests), Met: float64(f.run.requests) <= targetLDAPFullRequests*float64(f.raw.Requests),
			Note: fmt.Sprintf("floor: the raw client's bind and search pages (⌈%d users / %d⌉ and ⌈%d groups / %d⌉, and an empty last page where the server sends a cookie with a full one). dirsync: the job summary's directoryRequests, which also count the rootDSE read at the start (the flavor and the USN high-water mark)",
				dir.users, ldapconn.DefaultPageSize, dir.groups, ldapconn.DefaultPageSize),
		},
		{
			Scenario: scenario, Metric: "daemon peak RSS",
			Value: f.daemonMiB, Unit: "MiB",
			Target: fmt.Sprintf("< %d MiB", targetDaemonRSSMiB), Met: f.daemonMiB < targetDaemonRSSMiB,
			Note: fmt.Sprintf("VmHWM of dirsyncd (embedded NATS and JetStream included), sampled every 50 ms from the connection test to COMPLETED; %.0f MiB once it settled after COMPLETED", float64(f.settledKiB)/1024),
		},
		{
			Scenario: scenario, Metric: "plugin peak RSS",
			Value: f.pluginMiB, Unit: "MiB",
			Target: fmt.Sprintf("< %d MiB", targetPluginRSSMiB), Met: f.pluginMiB < targetPluginRSSMiB,
			Note: "VmHWM of dirsync-ldap (the daemon's largest child process), sampled every 50 ms",
		},
	}
}

// ldapInc is the measured incremental sync.
type ldapInc struct {
	run                syncRun
	changes            []ldapChange
	applied            time.Duration
	usn                int64
	before, after, raw rawLDAPRead
	recipients         int
	plan               string
	probe              groupProbe
}

// ldapIncremental makes n changes and measures the incremental sync
// that follows, between two raw reads of the same changes.
func ldapIncremental(ctx context.Context, env *Env, r *syncRig, srv *testenv.LDAPServer, dir ldapDir, n int) (*ldapInc, error) {
	in := &ldapInc{changes: dir.changes(n)}
	var err error
	// The mark the raw client reads from: the last sync's is older (taken
	// when its read began) and nothing changed under the base since.
	if in.usn, err = highestUSN(srv); err != nil {
		return nil, err
	}
	if err := applyChanges(env, srv, in); err != nil {
		return nil, err
	}
	if in.before, err = rawLDAPChanges(ctx, srv, in.usn); err != nil {
		return nil, err
	}
	env.Logf("raw client: the changes since USN %d: %s", in.usn, in.before)
	env.Logf("dirsync: incremental sync")
	if in.run, err = r.sync(ctx, env, false, "LDAP incremental sync"); err != nil {
		return nil, err
	}
	sum := summary(in.run.job)
	if sum.FullRead {
		return nil, fmt.Errorf("the incremental sync read the whole directory: %s", sum.ResyncReason)
	}
	in.plan = planNote(r.d.Log())
	env.Logf("daemon: %s", in.plan)
	if in.recipients, err = activeRecipients(ctx, r.d); err != nil {
		return nil, err
	}
	if in.after, err = rawLDAPChanges(ctx, srv, in.usn); err != nil {
		return nil, err
	}
	env.Logf("raw client: the same changes again: %s", in.after)
	if in.probe, err = probeGroupSearches(ctx, srv, in.after); err != nil {
		return nil, err
	}
	env.Logf("raw client: %s", in.probe)
	in.raw = faster(in.before, in.after)
	return in, nil
}

// applyChanges makes in.changes over one admin connection, logging how
// far it got every few seconds.
func applyChanges(env *Env, srv *testenv.LDAPServer, in *ldapInc) error {
	conn, err := srv.DialAdmin()
	if err != nil {
		return err
	}
	defer conn.Close()
	env.Logf("changing the directory: %s", changeKinds(in.changes))
	start, last := time.Now(), time.Now()
	for k, c := range in.changes {
		if err := c.do(conn); err != nil {
			return fmt.Errorf("change %d (%s of %s): %w", k+1, c.kind, userKey(c.user), err)
		}
		if time.Since(last) >= 3*time.Second {
			env.Logf("   %d of %d changes made", k+1, len(in.changes))
			last = time.Now()
		}
	}
	in.applied = time.Since(start)
	env.Logf("%d changes made in %.1f s", len(in.changes), in.applied.Seconds())
	return nil
}

// expectedActive is how many active recipients the changes leave.
func (in *ldapInc) expectedActive(before int) int {
	n := before
	for _, c := range in.changes {
		switch c.kind {
		case "delete":
			n--
		case "add":
			n++
		}
	}
	return n
}

// rows are the incremental sync's rows; full is the sync before it.
func (in *ldapInc) rows(full *ldapFull) []Row {
	scenario := fmt.Sprintf("LDAP incremental sync, %d changes", len(in.changes))
	sum, fullSum := summary(in.run.job), summary(full.run.job)
	wall := in.run.wall.Seconds()
	written := recipientEvents(sum)
	want := len(in.changes)
	active := fmt.Sprintf("%d active recipients after it, as the changes leave", in.recipients)
	if e := in.expectedActive(full.recipients); in.recipients != e {
		active = fmt.Sprintf("%d active recipients after it, where the changes leave %d", in.recipients, e)
	}
	read := sum.UsersRetrieved + sum.GroupsRetrieved
	return []Row{
		{
			Scenario: scenario, Metric: "wall time, request → COMPLETED",
			Value: wall, Floor: in.raw.Wall.Seconds(), Unit: "s",
			Target: "none (reported)", Met: true,
			Note: fmt.Sprintf("floor: the raw client (dial, bind) searching users and groups with (uSNChanged>=%d) added to the connector's filters, and the tombstones of users and groups in CN=Deleted Objects under Show Deleted; the faster of before (%s) and after (%s) dirsync. dirsync: summary fullRead false; %s; %s; %s. The full sync before it took %.2f s. Where RETRIEVING goes, timed alone after the sync: %s. Samba does not index member, so the first compares every group's member values; the connector makes it for every 100 groups at each level of nesting above the changed groups until a level finds none, and the second for every 100 member DNs of the changed groups and of the groups holding them",
				in.usn+1, in.before, in.after, phases(in.run.job), in.run.cpuNote(), in.plan, full.run.wall.Seconds(), in.probe),
		},
		{
			Scenario: scenario, Metric: "LDAP requests",
			Value: float64(in.run.requests), Floor: float64(in.raw.Requests), Unit: "req",
			Target: "none (reported)", Met: true,
			Note: fmt.Sprintf("floor: the raw client's bind, searches and tombstone search. dirsync: the job summary's directoryRequests; besides those it reads the rootDSE (the high-water mark), checks that it may read CN=Deleted Objects, and resolves the changed groups' member DNs and the groups they are nested in, 100 DNs a search. It read %d users and %d groups (%.1f%% of the full sync's %d entries, in %d requests; 1%% of the full sync's requests is not a measure here: at 500 entries a page, a full read is few requests)",
				sum.UsersRetrieved, sum.GroupsRetrieved, 100*float64(read)/float64(max(1, fullSum.UsersRetrieved+fullSum.GroupsRetrieved)),
				fullSum.UsersRetrieved+fullSum.GroupsRetrieved, full.run.requests),
		},
		{
			Scenario: scenario, Metric: "recipient events written",
			Value: float64(written), Unit: "events",
			Target: fmt.Sprintf("= %d, one per changed user", want), Met: written == want,
			Note: fmt.Sprintf("the changes (%s, made over LDAP in %.1f s), each to a different user with a recipient: a mail or department change, a deletion, a new user with mail, a user joining a group they were not in (directly or through nesting) or leaving theirs. Job summary: %d created, %d updated, %d archived, %d restored, %d removed; %d directory events; %s",
				changeKinds(in.changes), in.applied.Seconds(), sum.RecipientsCreated, sum.RecipientsUpdated, sum.RecipientsArchived, sum.RecipientsRestored, sum.RecipientsRemoved, sum.DirectoryEvents, active),
		},
	}
}
