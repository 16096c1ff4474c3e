package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/dirsync/dirsync/connectors/ldap/ldaptest"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/internal/testenv"
)

// ldapPad is how many padding users the directory holds: a full read
// sends them all, a read of changes none.
const ldapPad = 60

// The LDAP connector through dirsyncd, against a real slapd and a real
// Samba AD DC: the first sync makes the seeded directory's recipients
// (nested groups expanded); a hire, a leaver, a disabled account, a mail
// change, a user added to a nested group and a group renamed are read as
// changes only (the server sent no more than those) and give exactly
// their recipient events; and a cursor the server can no longer answer
// (slapd's session log lost, a domain controller restored from a backup)
// gives a full read with the reason.
func TestLDAPEndToEnd(t *testing.T) {
	for _, flavor := range []string{testenv.FlavorOpenLDAP, testenv.FlavorActiveDirectory} {
		t.Run(flavor, func(t *testing.T) { ldapScenario(t, flavor) })
	}
}

// ldapModel is what the directory holds now, as the test changed it.
type ldapModel struct {
	d       ldaptest.Directory
	people  map[string]ldaptest.Person // by key
	members map[string][]string        // group key -> expanded user keys
	names   map[string]string          // group key -> display name
}

func newLDAPModel(d ldaptest.Directory) *ldapModel {
	m := &ldapModel{d: d, people: map[string]ldaptest.Person{}, members: ldaptest.WantMembers(), names: map[string]string{}}
	for _, p := range ldaptest.People() {
		m.people[p.Key] = p
	}
	for i := 1; i <= ldapPad; i++ {
		p := ldaptest.PadPerson(i)
		m.people[p.Key] = p
	}
	for _, tm := range ldaptest.Teams() {
		m.names[tm.Key] = tm.Key
	}
	return m
}

// recipients is what the default import policy makes of the directory:
// every enabled user with an address, showing the security and
// distribution groups (the LDAP connector's default kinds) it is in,
// by display name.
func (m *ldapModel) recipients() map[string]recipientJSON {
	kinds := map[string]bool{"security": true, "distribution": true}
	out := map[string]recipientJSON{}
	for _, p := range m.people {
		email := m.d.Email(p)
		if p.Disabled || email == "" {
			continue
		}
		r := recipientJSON{Email: email, DisplayName: p.DisplayName(), Department: p.Dept, Connector: "corp", Status: "active"}
		for _, tm := range ldaptest.Teams() {
			if kinds[m.d.Kind(tm)] && slices.Contains(m.members[tm.Key], p.Key) {
				r.Groups = append(r.Groups, m.names[tm.Key])
			}
		}
		sort.Strings(r.Groups)
		out[p.DisplayName()] = r
	}
	return out
}

// checkRecipients compares the daemon's active recipients with the model.
func checkRecipients(t *testing.T, f *fixture, m *ldapModel, when string) {
	t.Helper()
	var list []recipientJSON
	f.cliJSON(&list, "recipients", "list")
	got := map[string]recipientJSON{}
	for _, r := range list {
		if r.Status == "active" {
			r.ObjectID = ""
			got[r.DisplayName] = r
		}
	}
	want := m.recipients()
	if len(got) != len(want) {
		t.Errorf("%s: %d active recipients; the directory gives %d", when, len(got), len(want))
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s: no recipient for %s", when, name)
			continue
		}
		if g.Email != w.Email || g.Department != w.Department || !slices.Equal(g.Groups, w.Groups) || g.Connector != w.Connector {
			t.Errorf("%s: recipient %s:\n got %+v\nwant %+v", when, name, g, w)
		}
	}
}

func ldapScenario(t *testing.T, flavor string) {
	bin := binaries(t)
	d := ldaptest.Start(t, flavor, ldapPad)
	// The daemon reads the server through a proxy that counts what the
	// server sends.
	proxy := testenv.StartLDAPProxy(t, d.Srv.URL)
	dir := t.TempDir()
	bindDN, password := d.Srv.ReaderDN, d.Srv.ReaderPassword
	if d.AD() {
		// Only accounts that may read the Deleted Objects container see
		// deletions as changes (Domain Admins by default).
		bindDN, password = d.Srv.AdminDN, d.Srv.AdminPassword
	}
	write(t, filepath.Join(dir, "bind-password"), password+"\n", 0o600)
	plugin, err := os.ReadFile(filepath.Join(bin, "dirsync-ldap"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(plugin)
	cfg := fmt.Sprintf(`
daemon { data_dir = "./data" }
nats { listen = "127.0.0.1:0" }
plugin "ldap" {
  path   = %q
  sha256 = %q
}
connector "corp" {
  plugin = "ldap"
  config {
    url                = %q
    bind_dn            = %q
    bind_password_file = "./bind-password"
    base_dn            = %q
  }
}
`, filepath.Join(bin, "dirsync-ldap"), hex.EncodeToString(sum[:]), proxy.URL(), bindDN, d.Base)
	write(t, filepath.Join(dir, "plugins.hcl"), cfg, 0o644)
	f := &fixture{t: t, bin: bin, dir: dir, config: filepath.Join(dir, "plugins.hcl"), log: &testenv.LockedBuffer{}}
	t.Cleanup(func() {
		f.stop()
		if t.Failed() {
			t.Logf("dirsyncd log:\n%s", f.log.String())
		}
	})
	f.start()

	var test struct {
		OK bool `json:"ok"`
	}
	f.cliJSON(&test, "connector", "test", "corp")
	if !test.OK {
		out, _, _ := f.cli("connector", "test", "corp")
		t.Fatalf("connector test corp failed:\n%s", out)
	}

	// The first sync: the seeded directory's recipients.
	m := newLDAPModel(d)
	first := syncCorp(t, f)
	if !first.FullRead {
		t.Errorf("the first sync read changes only")
	}
	checkRecipients(t, f, m, "after the first sync")
	var restore func(testing.TB)
	if d.AD() {
		// A backup of the domain controller as it is now, restored below.
		restore = d.Srv.Backup(t)
	}

	// The changes.
	before := m.recipients()
	hire := ldaptest.Person{Key: "frank", Given: "Frank", SN: "Foster", Mail: "frank@example.test", Dept: "Sales"}
	disable := "replace: userAccountControl\nuserAccountControl: 514\n"
	if !d.AD() {
		disable = "add: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n"
	}
	changes := d.UserLDIF(hire) +
		"dn: " + d.UserDN("bob") + "\nchangetype: delete\n\n" +
		"dn: " + d.UserDN("zoe") + "\nchangetype: modify\n" + disable + "-\n\n" +
		"dn: " + d.UserDN("alice") + "\nchangetype: modify\nreplace: mail\nmail: alice.anders@example.test\n-\n\n" +
		"dn: " + d.GroupDN("engineers") + "\nchangetype: modify\nadd: member\nmember: " + d.UserDN("erin") + "\n-\n\n" +
		"dn: " + d.GroupDN("cyc-b") + "\nchangetype: modrdn\nnewrdn: " + strings.SplitN(d.GroupDN("cycle-b"), ",", 2)[0] + "\ndeleteoldrdn: 1\n\n"
	if !d.AD() {
		// What slapd's refint overlay would do (Active Directory does it
		// itself): members that named the renamed group follow it.
		changes += "dn: " + d.GroupDN("cyc-a") + "\nchangetype: modify\ndelete: member\nmember: " + d.GroupDN("cyc-b") +
			"\n-\nadd: member\nmember: " + d.GroupDN("cycle-b") + "\n-\n\n"
		// The engineers lose bob by hand too (refint again).
		changes += "dn: " + d.GroupDN("engineers") + "\nchangetype: modify\ndelete: member\nmember: " + d.UserDN("bob") + "\n-\n\n"
	}
	d.Srv.Apply(t, changes)
	m.people[hire.Key] = hire
	delete(m.people, "bob")
	zoe := m.people["zoe"]
	zoe.Disabled = true
	m.people["zoe"] = zoe
	alice := m.people["alice"]
	alice.Mail = "alice.anders@example.test"
	m.people["alice"] = alice
	for _, g := range []string{"engineers", "all-staff", "newsletter"} {
		set := slices.DeleteFunc(slices.Clone(m.members[g]), func(k string) bool { return k == "bob" })
		set = append(set, "erin")
		slices.Sort(set)
		m.members[g] = set
	}
	m.names["cyc-b"] = "cycle-b"

	// The second sync reads the changes only.
	proxy.Reset()
	second := syncCorp(t, f)
	if second.FullRead || second.ResyncReason != "" {
		t.Errorf("the second sync read everything: %+v", second)
	}
	if n := proxy.Entries(); n >= ldapPad {
		t.Errorf("the server sent %d entries for the changes; the directory's %d padding users alone are %d. Searches:\n%s",
			n, ldapPad, ldapPad, searchesOf(proxy))
	}
	t.Logf("the server sent %d entries for the changes, in %d searches", proxy.Entries(), len(proxy.Searches()))
	checkRecipients(t, f, m, "after the changes")
	after := m.recipients()

	// Exactly the recipient events the changes make.
	want := map[string]string{}
	for name, r := range after {
		b, ok := before[name]
		switch {
		case !ok:
			want[name] = events.TypeRecipientCreated
		case b.Email != r.Email || b.Department != r.Department || !slices.Equal(b.Groups, r.Groups):
			want[name] = events.TypeRecipientUpdated
		}
	}
	for name := range before {
		if _, ok := after[name]; !ok {
			want[name] = events.TypeRecipientArchived
		}
	}
	got := jobRecipientEvents(t, f, second.JobID, password)
	t.Logf("the changes' recipient events: %v", got)
	if !mapsEqual(got, want) {
		t.Errorf("the second sync's recipient events:\n got %v\nwant %v", got, want)
	}

	// A cursor the server can no longer answer: a full read, with why.
	if d.AD() {
		restore(t)
		m = newLDAPModel(d)
	} else {
		d.Srv.Apply(t, "dn: "+d.UserDN("alice")+"\nchangetype: modify\nreplace: title\ntitle: Lead\n-\n\n")
		d.Srv.Restart(t)
		d.Srv.Apply(t, "dn: "+d.UserDN("alice")+"\nchangetype: modify\nreplace: title\ntitle: Head\n-\n\n")
	}
	third := syncCorp(t, f)
	if !third.FullRead || third.ResyncReason == "" {
		t.Errorf("the sync after the cursor was lost: full read %v, resync reason %q; want a full read with a reason", third.FullRead, third.ResyncReason)
	}
	t.Logf("after the cursor was lost: %q", third.ResyncReason)
	checkRecipients(t, f, m, "after the full read")
	assertNoSecret(t, "dirsyncd log", f.log.String())
	if strings.Contains(f.log.String(), password) {
		t.Errorf("the dirsyncd log holds the bind password")
	}
}

// syncSummary is the part of a job's summary the LDAP test reads.
type syncSummary struct {
	JobID        string
	FullRead     bool   `json:"fullRead"`
	ResyncReason string `json:"resyncReason"`
}

// syncCorp runs a sync of connector corp and returns its summary.
func syncCorp(t *testing.T, f *fixture) syncSummary {
	t.Helper()
	var job jobJSON
	f.cliJSON(&job, "sync", "corp", "--wait")
	if job.State != "COMPLETED" {
		t.Fatalf("sync corp: %s %s", job.State, job.Reason)
	}
	var s syncSummary
	if err := json.Unmarshal(job.Summary, &s); err != nil {
		t.Fatal(err)
	}
	s.JobID = job.ID
	return s
}

// jobRecipientEvents returns the recipient events job stored, as event
// type by recipient display name, read from the daemon's store while it
// is stopped; the daemon is started again. No stored event may hold the
// bind password.
func jobRecipientEvents(t *testing.T, f *fixture, job, password string) map[string]string {
	t.Helper()
	if err := f.stop(); err != nil {
		t.Fatalf("stopping dirsyncd: %v", err)
	}
	b := testenv.JetStream(t, filepath.Join(f.dir, "data"))
	out := map[string]string{}
	forEachStored(t, b.JS, func(subject string, data []byte) {
		if strings.Contains(string(data), password) {
			t.Errorf("the event on %s holds the bind password", subject)
		}
		e, err := events.Decode(data)
		if err != nil || e.JobID != job || !strings.HasPrefix(e.Type, "io.dirsync.recipient.") {
			return
		}
		var rc events.RecipientChange
		if err := e.DecodeData(&rc); err != nil {
			t.Errorf("%s: %v", subject, err)
			return
		}
		name := rc.Recipient.DisplayName
		if prev, ok := out[name]; ok {
			t.Errorf("job %s: %s and %s for %s", job, prev, e.Type, name)
		}
		out[name] = e.Type
	})
	b.Close()
	f.start()
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// searchesOf lists what the proxy saw, for a failure message.
func searchesOf(p *testenv.LDAPProxy) string {
	var b strings.Builder
	for _, s := range p.Searches() {
		fmt.Fprintf(&b, "  %s %q: %d entries\n", s.BaseDN, s.Filter, s.Entries)
	}
	return b.String()
}
