package bench

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	ldapconn "github.com/dirsync/dirsync/connectors/ldap"
	"github.com/dirsync/dirsync/internal/testenv"
)

// The floor of the ldap scenario: a plain go-ldap client making the
// searches the connector makes, with nothing else. It asks for the same
// attributes (the connector's defaults for Active Directory, from its
// own Decoder), with the same filters, base and page size (the
// connector's default, 500), over the same kind of connection (plain
// ldap://, a simple bind as the same account). Entries are parsed by
// go-ldap, as the connector's are, counted and dropped: no decoding into
// users and groups, no nested group expansion, no gRPC, no daemon.

// faster returns the faster of two runs of one raw read: the floor the
// connector's figure stands beside.
func faster(a, b rawLDAPRead) rawLDAPRead {
	if b.Wall < a.Wall {
		return b
	}
	return a
}

// rawLDAPRead is what one raw read did.
type rawLDAPRead struct {
	Wall time.Duration
	// Requests counts the bind and every search request (a page is one),
	// as the connector's summary counts its own.
	Requests int
	// Users and Groups are the entries read, Members the member values
	// of the groups, Tombstones the deleted users and groups.
	Users, Groups, Members, Tombstones int
	// GroupDNs and MemberDNs are the groups read and their member
	// values, kept by a read of changes for probeGroupSearches.
	GroupDNs, MemberDNs []string
}

func (r rawLDAPRead) String() string {
	s := fmt.Sprintf("%.2f s, %d requests, %d users, %d groups with %d member values", r.Wall.Seconds(), r.Requests, r.Users, r.Groups, r.Members)
	if r.Tombstones > 0 {
		s += fmt.Sprintf(", %d tombstones", r.Tombstones)
	}
	return s
}

// rawLDAP is a bound connection and what it counted.
type rawLDAP struct {
	conn *ldap.Conn
	read rawLDAPRead
}

// adDefaults is the connector's configuration with nothing set: its
// filters and attributes for Active Directory.
var adDefaults ldapconn.Config

// dialRaw connects to srv and binds as its admin, as the connector's
// bind_dn in the scenario does.
func dialRaw(srv *testenv.LDAPServer) (*rawLDAP, error) {
	conn, err := ldap.DialURL(srv.URL, ldap.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}))
	if err != nil {
		return nil, fmt.Errorf("raw client: %w", err)
	}
	conn.SetTimeout(ldapconn.DefaultTimeout)
	r := &rawLDAP{conn: conn}
	r.read.Requests++
	if err := conn.Bind(srv.AdminDN, srv.AdminPassword); err != nil {
		conn.Close()
		return nil, fmt.Errorf("raw client: bind: %w", err)
	}
	return r, nil
}

// pages runs a paged search of filter under base and calls each for
// every entry.
func (r *rawLDAP) pages(ctx context.Context, base, filter string, attrs []string, controls []ldap.Control, each func(*ldap.Entry)) error {
	var cookie []byte
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		paging := ldap.NewControlPaging(uint32(ldapconn.DefaultPageSize))
		paging.SetCookie(cookie)
		req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			filter, attrs, append([]ldap.Control{paging}, controls...))
		res, err := r.conn.Search(req)
		r.read.Requests++
		if err != nil {
			return fmt.Errorf("raw client: search %s: %w", filter, err)
		}
		for _, e := range res.Entries {
			each(e)
		}
		p, _ := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging)
		if p == nil || len(p.Cookie) == 0 {
			return nil
		}
		cookie = p.Cookie
	}
}

// usersAndGroups reads the users and groups of filter suffix since
// ("" for all; "(uSNChanged>=N)" for those changed since).
func (r *rawLDAP) usersAndGroups(ctx context.Context, since string) error {
	dec := adDefaults.Decoder(ldapconn.FlavorActiveDirectory)
	users := adDefaults.UserFilter(ldapconn.FlavorActiveDirectory)
	groups := adDefaults.GroupFilter(ldapconn.FlavorActiveDirectory)
	if since != "" {
		users, groups = "(&"+users+since+")", "(&"+groups+since+")"
	}
	if err := r.pages(ctx, ldapBase, users, dec.UserAttributes(), nil, func(*ldap.Entry) { r.read.Users++ }); err != nil {
		return err
	}
	return r.pages(ctx, ldapBase, groups, dec.GroupAttributes(), nil, func(e *ldap.Entry) {
		r.read.Groups++
		members := e.GetAttributeValues("member")
		r.read.Members += len(members)
		if since != "" {
			r.read.GroupDNs = append(r.read.GroupDNs, e.DN)
			r.read.MemberDNs = append(r.read.MemberDNs, members...)
		}
	})
}

// rawLDAPFull reads every user and group under ldapBase: the full
// sync's floor.
func rawLDAPFull(ctx context.Context, srv *testenv.LDAPServer) (rawLDAPRead, error) {
	start := time.Now()
	r, err := dialRaw(srv)
	if err != nil {
		return rawLDAPRead{}, err
	}
	defer r.conn.Close()
	if err := r.usersAndGroups(ctx, ""); err != nil {
		return rawLDAPRead{}, err
	}
	r.read.Wall = time.Since(start)
	return r.read, nil
}

// rawLDAPChanges reads what changed since usn: the users and groups
// whose uSNChanged is above it, and the tombstones of users and groups
// deleted since, under Show Deleted. The incremental sync's floor.
func rawLDAPChanges(ctx context.Context, srv *testenv.LDAPServer, usn int64) (rawLDAPRead, error) {
	start := time.Now()
	r, err := dialRaw(srv)
	if err != nil {
		return rawLDAPRead{}, err
	}
	defer r.conn.Close()
	since := fmt.Sprintf("(uSNChanged>=%d)", usn+1)
	if err := r.usersAndGroups(ctx, since); err != nil {
		return rawLDAPRead{}, err
	}
	tombs := "(&(isDeleted=TRUE)" + since + "(|(objectClass=user)(objectClass=group)))"
	err = r.pages(ctx, "CN=Deleted Objects,"+srv.BaseDN, tombs, []string{"objectGUID", "objectClass", "isDeleted"},
		[]ldap.Control{ldap.NewControlMicrosoftShowDeleted()}, func(*ldap.Entry) { r.read.Tombstones++ })
	if err != nil {
		return rawLDAPRead{}, err
	}
	r.read.Wall = time.Since(start)
	return r.read, nil
}

// groupProbe is how long two kinds of search the connector's
// incremental read makes take on their own.
type groupProbe struct {
	// parents is one search for the groups holding up to 100 changed
	// groups, (&(objectClass=group)(|(member=DN)…)), and parentDNs how
	// many DNs it named.
	parents   time.Duration
	parentDNs int
	// lookup is one search for up to 100 member DNs among the users,
	// (&(user filter)(|(distinguishedName=DN)…)), and lookupDNs how
	// many it named.
	lookup    time.Duration
	lookupDNs int
}

func (p groupProbe) String() string {
	if p.parentDNs == 0 {
		return "no group changed"
	}
	return fmt.Sprintf("one search for the groups holding %d changed groups, (&(objectClass=group)(|(member=DN)…)), took %.2f s; one lookup of %d member DNs among the users, (&(user filter)(|(distinguishedName=DN)…)), %.3f s",
		p.parentDNs, p.parents.Seconds(), p.lookupDNs, p.lookup.Seconds())
}

// probeGroupSearches times, once each, the two searches an incremental
// read of changed groups makes (100 DNs a search, as the connector's):
// where its time goes.
func probeGroupSearches(ctx context.Context, srv *testenv.LDAPServer, changes rawLDAPRead) (groupProbe, error) {
	r, err := dialRaw(srv)
	if err != nil {
		return groupProbe{}, err
	}
	defer r.conn.Close()
	anyOf := func(attr string, dns []string) string {
		var b strings.Builder
		b.WriteString("(|")
		for _, dn := range dns {
			b.WriteString("(" + attr + "=" + ldap.EscapeFilter(dn) + ")")
		}
		return b.String() + ")"
	}
	timed := func(filter string) (time.Duration, error) {
		start := time.Now()
		err := r.pages(ctx, ldapBase, filter, []string{"objectGUID"}, nil, func(*ldap.Entry) {})
		return time.Since(start), err
	}
	var p groupProbe
	parents := changes.GroupDNs[:min(len(changes.GroupDNs), 100)]
	members := changes.MemberDNs[:min(len(changes.MemberDNs), 100)]
	if len(parents) == 0 || len(members) == 0 {
		return p, nil // no changed group: the incremental read made neither
	}
	p.parentDNs, p.lookupDNs = len(parents), len(members)
	if p.parents, err = timed("(&" + adDefaults.GroupFilter(ldapconn.FlavorActiveDirectory) + anyOf("member", parents) + ")"); err != nil {
		return p, err
	}
	p.lookup, err = timed("(&" + adDefaults.UserFilter(ldapconn.FlavorActiveDirectory) + anyOf("distinguishedName", members) + ")")
	return p, err
}

// highestUSN is the domain controller's highestCommittedUSN now: the
// high-water mark an incremental read starts from.
func highestUSN(srv *testenv.LDAPServer) (int64, error) {
	conn, err := srv.DialAdmin()
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	res, err := conn.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"highestCommittedUSN"}, nil))
	if err != nil {
		return 0, fmt.Errorf("rootDSE: %w", err)
	}
	if len(res.Entries) == 0 {
		return 0, fmt.Errorf("rootDSE: no entry")
	}
	return strconv.ParseInt(res.Entries[0].GetAttributeValue("highestCommittedUSN"), 10, 64)
}
