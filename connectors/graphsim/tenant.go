package graphsim

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// OData types of group members.
const (
	TypeUser       = "#microsoft.graph.user"
	TypeGroup      = "#microsoft.graph.group"
	TypeOrgContact = "#microsoft.graph.orgContact"
	TypeDevice     = "#microsoft.graph.device"
)

// Tenant is the directory graphsim serves. The value returned by Sim.Tenant
// is a read-only snapshot: change the directory through the Sim's methods
// (AddUser, DeleteUser, AddMembers, Churn, Mutate, ...).
type Tenant struct {
	// ID is the directory (tenant) ID, a lowercase GUID.
	ID string
	// Domain is the primary (initial) domain, e.g. contoso.onmicrosoft.com.
	Domain string
	// Users in the order /v1.0/users lists them.
	Users []User
	// Groups in the order /v1.0/groups lists them.
	Groups []Group
}

// User is a user object. Empty strings are served as JSON null.
type User struct {
	// ID is the object ID, a lowercase GUID.
	ID string
	// UserPrincipalName is unique in the tenant (case-insensitive).
	UserPrincipalName string
	// Mail is the primary SMTP address; empty means null (no mailbox).
	Mail string
	// DisplayName is the full name ("José García", "山田 太郎") or a service
	// account's label.
	DisplayName string
	// GivenName and Surname are empty for service accounts and some guests.
	GivenName string
	Surname   string
	// Department and JobTitle may be empty (null).
	Department string
	JobTitle   string
	// UserType is "Member" or "Guest".
	UserType string
	// AccountEnabled is false for disabled (blocked) accounts.
	AccountEnabled bool
	// AssignedLicenses holds skuId GUIDs; empty means unlicensed.
	AssignedLicenses []string

	// The attributes below are empty in a tenant generated without
	// Config.Attributes, so that such a tenant stays what it always was.
	// Empty strings are served as null, except where a comment says that
	// graphsim derives a value (as it did before these fields existed).

	// ProxyAddresses are the Exchange addresses: "SMTP:" once for the
	// primary address, "smtp:" for aliases, and other types ("SIP:",
	// "X500:"). Empty derives them from Mail and UserPrincipalName.
	ProxyAddresses []string
	// PreferredLanguage is an ISO 639-1/3166 tag such as "en-US".
	PreferredLanguage string
	// EmployeeID and EmployeeType are Graph's employeeId and employeeType.
	EmployeeID   string
	EmployeeType string
	// CompanyName is empty to derive it: the organization's name for
	// members with a given name, else null.
	CompanyName string
	// OfficeLocation, City and Country are free text, as in Entra.
	OfficeLocation string
	City           string
	Country        string
	// UsageLocation is a two-letter country code; empty derives "US" for
	// licensed users (Entra requires one to assign a license), else null.
	UsageLocation string
	// MobilePhone is the mobile phone number.
	MobilePhone string
	// ExtensionAttributes are extensionAttribute1..15 of
	// onPremisesExtensionAttributes; index 0 is extensionAttribute1.
	ExtensionAttributes [15]string
	// ManagerID is the object ID of the user's manager (a user of the
	// tenant), or empty for none.
	ManagerID string
	// MailboxPurpose is mailboxSettings.userPurpose (see the Mailbox*
	// constants); empty means the user has no Exchange Online mailbox.
	MailboxPurpose string
}

// Values of User.MailboxPurpose, Graph's userPurpose
// (https://learn.microsoft.com/graph/api/resources/mailboxsettings):
// user, linked, shared, room, equipment, others.
const (
	MailboxUser      = "user"
	MailboxLinked    = "linked"
	MailboxShared    = "shared"
	MailboxRoom      = "room"
	MailboxEquipment = "equipment"
	MailboxOthers    = "others"
)

// Group is a group object.
type Group struct {
	// ID is the object ID, a lowercase GUID.
	ID string
	// DisplayName is unique in a generated tenant (Graph does not require it).
	DisplayName string
	// Mail is empty (null) for groups that are not mail-enabled.
	Mail string
	// MailNickname is the ASCII alias (the local part of Mail).
	MailNickname string
	// GroupTypes is ["Unified"] for Microsoft 365 groups, else empty.
	GroupTypes []string
	// MailEnabled and SecurityEnabled distinguish Unified (mail), security
	// (security), mail-enabled security (both) and distribution (mail)
	// groups.
	MailEnabled     bool
	SecurityEnabled bool
	// Members are the direct members, unique by ID, in the order
	// /v1.0/groups/{id}/members lists them.
	Members []Member
}

// Member is a direct member of a group.
type Member struct {
	// ID is the member's object ID. Users and groups resolve to objects of
	// the tenant; org contacts and devices exist only as members.
	ID string
	// ODataType is one of TypeUser, TypeGroup, TypeOrgContact, TypeDevice.
	ODataType string
}

// IsUnified reports whether the group is a Microsoft 365 (Unified) group.
func (g *Group) IsUnified() bool {
	for _, t := range g.GroupTypes {
		if strings.EqualFold(t, "Unified") {
			return true
		}
	}
	return false
}

// UsersWithMail returns the users whose Mail is set, in tenant order.
func (t *Tenant) UsersWithMail() []User {
	out := make([]User, 0, len(t.Users))
	for _, u := range t.Users {
		if u.Mail != "" {
			out = append(out, u)
		}
	}
	return out
}

// User returns the user with the given object ID or user principal name
// (case-insensitive), or nil.
func (t *Tenant) User(idOrUPN string) *User {
	for i := range t.Users {
		u := &t.Users[i]
		if strings.EqualFold(u.ID, idOrUPN) || strings.EqualFold(u.UserPrincipalName, idOrUPN) {
			return u
		}
	}
	return nil
}

// Group returns the group with the given object ID (case-insensitive), or
// nil.
func (t *Tenant) Group(id string) *Group {
	for i := range t.Groups {
		if strings.EqualFold(t.Groups[i].ID, id) {
			return &t.Groups[i]
		}
	}
	return nil
}

// clone returns a deep copy that shares no slice with t.
func (t *Tenant) clone() *Tenant {
	c := &Tenant{ID: t.ID, Domain: t.Domain, Users: make([]User, len(t.Users)), Groups: make([]Group, len(t.Groups))}
	copy(c.Users, t.Users)
	for i := range c.Users {
		c.Users[i].AssignedLicenses = append([]string(nil), t.Users[i].AssignedLicenses...)
		c.Users[i].ProxyAddresses = append([]string(nil), t.Users[i].ProxyAddresses...)
	}
	copy(c.Groups, t.Groups)
	for i := range c.Groups {
		c.Groups[i].GroupTypes = append([]string(nil), t.Groups[i].GroupTypes...)
		c.Groups[i].Members = append([]Member(nil), t.Groups[i].Members...)
	}
	return c
}

// snapshot is an immutable tenant with its lookup indexes. Handlers load
// the current snapshot once per request and never lock.
type snapshot struct {
	tenant  *Tenant
	ver     uint64         // version of the last change included
	userIdx map[string]int // lowercase ID and lowercase UPN -> index
	grpIdx  map[string]int // lowercase ID -> index
	unified []int          // indexes of Unified groups

	// deleted holds the soft-deleted users by lowercase ID; never
	// modified (a change copies it).
	deleted map[string]*User
	// log holds the changes since the log was last cleared, in version
	// order. Snapshots share its backing array: only the newest snapshot
	// is ever appended to.
	log []change
	// epoch is the delta-token generation; ExpireDeltaTokens bumps it.
	epoch uint64

	// byID orders the users and groups by lowercase ID for delta paging;
	// computed on first use.
	byID func() *idOrder
}

// idOrder holds tenant indexes sorted by lowercase object ID.
type idOrder struct {
	users, groups []int32
}

// order returns the ID orders of s, sorting them on first use.
func (s *snapshot) order() *idOrder { return s.byID() }

func (s *snapshot) initOrder() {
	t := s.tenant
	s.byID = sync.OnceValue(func() *idOrder {
		o := &idOrder{users: make([]int32, len(t.Users)), groups: make([]int32, len(t.Groups))}
		ukeys := make([]string, len(t.Users))
		for i := range t.Users {
			o.users[i] = int32(i)
			ukeys[i] = strings.ToLower(t.Users[i].ID)
		}
		slices.SortFunc(o.users, func(a, b int32) int { return strings.Compare(ukeys[a], ukeys[b]) })
		gkeys := make([]string, len(t.Groups))
		for i := range t.Groups {
			o.groups[i] = int32(i)
			gkeys[i] = strings.ToLower(t.Groups[i].ID)
		}
		slices.SortFunc(o.groups, func(a, b int32) int { return strings.Compare(gkeys[a], gkeys[b]) })
		return o
	})
}

// newSnapshot validates t and indexes it. t must not change afterwards.
func newSnapshot(t *Tenant, ver uint64) (*snapshot, error) {
	s := &snapshot{
		tenant:  t,
		ver:     ver,
		userIdx: make(map[string]int, 2*len(t.Users)),
		grpIdx:  make(map[string]int, len(t.Groups)),
	}
	var errs []error
	ids := make(map[string]string, len(t.Users)+len(t.Groups))
	claim := func(id, what string) {
		k := strings.ToLower(id)
		if id == "" {
			errs = append(errs, fmt.Errorf("%s has an empty ID", what))
		} else if prev, dup := ids[k]; dup {
			errs = append(errs, fmt.Errorf("%s has ID %s, already used by %s", what, id, prev))
		}
		ids[k] = what
	}
	for i := range t.Users {
		u := &t.Users[i]
		what := fmt.Sprintf("user %d (%s)", i, u.UserPrincipalName)
		claim(u.ID, what)
		s.userIdx[strings.ToLower(u.ID)] = i
		upn := strings.ToLower(u.UserPrincipalName)
		if upn == "" {
			errs = append(errs, fmt.Errorf("%s has an empty userPrincipalName", what))
		} else if _, dup := s.userIdx[upn]; dup {
			errs = append(errs, fmt.Errorf("%s: userPrincipalName %s is not unique", what, u.UserPrincipalName))
		} else {
			s.userIdx[upn] = i
		}
	}
	for i := range t.Groups {
		g := &t.Groups[i]
		what := fmt.Sprintf("group %d (%s)", i, g.DisplayName)
		claim(g.ID, what)
		s.grpIdx[strings.ToLower(g.ID)] = i
		if g.IsUnified() {
			s.unified = append(s.unified, i)
		}
	}
	for i := range t.Groups {
		g := &t.Groups[i]
		seen := make(map[string]struct{}, len(g.Members))
		for _, m := range g.Members {
			switch m.ODataType {
			case TypeUser, TypeGroup, TypeOrgContact, TypeDevice:
			default:
				errs = append(errs, fmt.Errorf("group %s: member %s has unknown @odata.type %q", g.ID, m.ID, m.ODataType))
			}
			k := strings.ToLower(m.ID)
			if m.ID == "" {
				errs = append(errs, fmt.Errorf("group %s has a member with an empty ID", g.ID))
			} else if _, dup := seen[k]; dup {
				errs = append(errs, fmt.Errorf("group %s: member %s appears twice", g.ID, m.ID))
			}
			seen[k] = struct{}{}
		}
	}
	for i := range t.Users {
		u := &t.Users[i]
		if u.ManagerID == "" {
			continue
		}
		j, ok := s.userIdx[strings.ToLower(u.ManagerID)]
		switch {
		case !ok || !strings.EqualFold(t.Users[j].ID, u.ManagerID):
			errs = append(errs, fmt.Errorf("user %s has manager %s, which is not a user of the tenant", u.ID, u.ManagerID))
		case j == i:
			errs = append(errs, fmt.Errorf("user %s is its own manager", u.ID))
		}
	}
	if len(errs) > 10 {
		errs = append(errs[:10], fmt.Errorf("and %d more problems", len(errs)-10))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s.initOrder()
	return s, nil
}

// user returns the user with the given ID or UPN, or nil.
func (s *snapshot) user(idOrUPN string) *User {
	if i, ok := s.userIdx[strings.ToLower(idOrUPN)]; ok {
		return &s.tenant.Users[i]
	}
	return nil
}

// group returns the group with the given ID, or nil.
func (s *snapshot) group(id string) *Group {
	if i, ok := s.grpIdx[strings.ToLower(id)]; ok {
		return &s.tenant.Groups[i]
	}
	return nil
}
