package events

import (
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"
)

// Job states, in the order a successful job passes through them.
const (
	StatePending    = "PENDING"
	StateStarted    = "STARTED"
	StateRetrieving = "RETRIEVING"
	StateProcessing = "PROCESSING"
	StateSaving     = "SAVING"
	StateCompleted  = "COMPLETED"
	StateCanceled   = "CANCELED"
	StateFailed     = "FAILED"
)

// States lists the eight job states: the six of a successful job in order,
// then the two other final ones.
func States() []string {
	return []string{StatePending, StateStarted, StateRetrieving, StateProcessing,
		StateSaving, StateCompleted, StateCanceled, StateFailed}
}

// Final reports whether a job in this state will never change again.
func Final(state string) bool {
	return state == StateCompleted || state == StateCanceled || state == StateFailed
}

// SyncState is the data of TypeSyncState.
type SyncState struct {
	JobID     string `json:"jobId"`
	Connector string `json:"connector"`
	State     string `json:"state"`
	// Full is true when the job reads the whole directory: on PENDING and
	// STARTED, when a full read was asked for; from RETRIEVING on, when
	// the job does one, asked for or not (a first sync, an expired delta
	// token), so that it agrees with the summary's FullRead.
	Full bool `json:"full"`
	// RequestedBy says who asked: "cli", "api", "schedule".
	RequestedBy string `json:"requestedBy,omitempty"`
	// Reason explains FAILED and CANCELED in terms an operator can act on.
	Reason string `json:"reason,omitempty"`
	// Summary is set on COMPLETED and FAILED.
	Summary *Summary `json:"summary,omitempty"`
	// Cursor is set on COMPLETED: where the next incremental sync starts.
	Cursor string `json:"cursor,omitempty"`
	// Options are the one-time options the job was requested with (set on
	// PENDING), and on STARTED those it runs with when it carries on those
	// of the job named by Resumes.
	Options *JobOptions `json:"options,omitempty"`
	// Resumes, set on STARTED, names an earlier job of the connector that
	// FAILED after part of its changes were stored: this job applies that
	// job's one-time options (its tags, tag mode, mass-removal consent)
	// together with its own, so that they reach every recipient, not only
	// the part the failed job stored.
	Resumes string `json:"resumes,omitempty"`
}

// JobOptions are one-time options of a job: they override the connector's
// import block for that job only.
type JobOptions struct {
	// DryRun stops the job after PROCESSING: it applies nothing and
	// reports the changes it would make.
	DryRun bool `json:"dryRun,omitempty"`
	// AllowMassRemoval lets the job remove more recipients than max_removals.
	AllowMassRemoval bool `json:"allowMassRemoval,omitempty"`
	// Tags replace the import block's tags for this job: at most
	// MaxJobTags, each 1 to MaxTagRunes characters (Validated says which).
	Tags []string `json:"tags,omitempty"`
	// TagMode is TagModeAppend, TagModeReplace, or "" for the import
	// block's tag_mode.
	TagMode           string `json:"tagMode,omitempty"`
	UpdateExisting    *bool  `json:"updateExisting,omitempty"`
	ExcludeUnlicensed *bool  `json:"excludeUnlicensed,omitempty"`
}

// Summary counts what a job did.
type Summary struct {
	UsersRetrieved       int64 `json:"usersRetrieved"`
	GroupsRetrieved      int64 `json:"groupsRetrieved"`
	MembershipsRetrieved int64 `json:"membershipsRetrieved"`
	SkippedMembers       int64 `json:"skippedMembers"`
	// RejectedObjects counts the objects dropped: the sum of Rejected.
	RejectedObjects int64 `json:"rejectedObjects"`
	// Rejected counts the objects dropped, by reason: those the connector
	// sent that failed the daemon's checks ("invalid_id": an ID that cannot
	// be a directory object ID) and those the connector dropped itself
	// (its own reasons, e.g. "id_not_guid").
	Rejected map[string]int64 `json:"rejected,omitempty"`
	// Sanitized counts the fields of retrieved objects that were cleaned
	// before being recorded, by the daemon or by the connector (which adds
	// its own counts, e.g. Graph strings whose invalid UTF-8 its decoder
	// replaced), by reason: "invalid_utf8" (replaced
	// by U+FFFD), "control_characters" (removed), "too_long" (cut to 256
	// characters), "invalid_email" (not a bare address: dropped, so the
	// user has none), "invalid_value" (outside what the protocol allows).
	Sanitized map[string]int64 `json:"sanitized,omitempty"`
	// DirectoryRequests counts the requests the connector made to its
	// directory (Graph requests, LDAP searches).
	DirectoryRequests int64 `json:"directoryRequests,omitempty"`
	// GraphRequests is DirectoryRequests under its first name, kept for
	// the consumers that read it (it was named when Entra was the only
	// directory): the same count, whatever the directory.
	GraphRequests int64 `json:"graphRequests"`
	// Retries and ThrottleWaitMS count the connector's retried requests
	// and the time it waited because its directory asked it to (Graph's
	// 429 and 503, an LDAP server busy).
	Retries        int64 `json:"retries"`
	ThrottleWaitMS int64 `json:"throttleWaitMs"`
	// FullRead is true when the job read the whole directory (a first or
	// forced sync, full_sync_interval, or a resync); false for changes only.
	// A FAILED job's says which read it was doing, so that it agrees with
	// the job's Full.
	FullRead bool `json:"fullRead"`
	// ResyncReason says why an incremental sync read everything instead.
	ResyncReason      string `json:"resyncReason,omitempty"`
	DirectoryEvents   int    `json:"directoryEvents"`
	RecipientsCreated int    `json:"recipientsCreated"`
	RecipientsUpdated int    `json:"recipientsUpdated"`
	// RecipientsRemoved counts recipients deleted (on_removed = "delete").
	RecipientsRemoved   int `json:"recipientsRemoved"`
	RecipientsArchived  int `json:"recipientsArchived"`
	RecipientsRestored  int `json:"recipientsRestored"`
	RecipientsUnchanged int `json:"recipientsUnchanged"`
	// RecipientsKept counts recipients whose user no longer passes the
	// policy but that stay active (on_removed = "keep").
	RecipientsKept int `json:"recipientsKept"`
	// Skipped counts directory users that are not recipients, by reason:
	// no_email, disabled, guest, unlicensed, out_of_scope, duplicate_email.
	Skipped map[string]int `json:"skipped,omitempty"`
	// DuplicateEmails describes users sharing an email address: which one
	// became the recipient and which were skipped (at most 100 entries).
	DuplicateEmails []string `json:"duplicateEmails,omitempty"`
	// Warnings are things an admin should look at, e.g. an include_groups
	// entry that names no group.
	Warnings []string `json:"warnings,omitempty"`
	// Recipients is the connector's active recipient count after the job.
	Recipients int `json:"recipients"`
	// DryRun is true when the job applied nothing.
	DryRun bool `json:"dryRun,omitempty"`
	// DurationMS is the time from STARTED to the final state.
	DurationMS int64 `json:"durationMs"`
}

// Requests returns the connector's requests to its directory: a summary
// recorded before DirectoryRequests has them under GraphRequests only.
func (s *Summary) Requests() int64 { return max(s.DirectoryRequests, s.GraphRequests) }

// MailboxNone is a User's MailboxPurpose when the connector was asked
// what the user's mailbox is for and found none it could read (Graph: no
// Exchange Online mailbox), so that it is not asked again until the user
// changes.
const MailboxNone = "none"

// MailboxUnknown is a User's MailboxPurpose when the connector was asked
// and could not say for anyone (Graph without MailboxSettings.Read): the
// user is asked again at every sync, and the import policy guesses (see
// policy.Policy's skip).
const MailboxUnknown = "unknown"

// User is a directory user as the directory now describes it (the data of
// TypeUserChanged): the full state, not only what changed.
type User struct {
	ID                   string `json:"id"`
	UserPrincipalName    string `json:"userPrincipalName,omitempty"`
	Mail                 string `json:"mail,omitempty"`
	DisplayName          string `json:"displayName,omitempty"`
	GivenName            string `json:"givenName,omitempty"`
	Surname              string `json:"surname,omitempty"`
	Department           string `json:"department,omitempty"`
	JobTitle             string `json:"jobTitle,omitempty"`
	AccountEnabled       bool   `json:"accountEnabled"`
	UserType             string `json:"userType,omitempty"`
	AssignedLicenseCount int    `json:"assignedLicenseCount"`
	// Guest is true for an external account, as the connector says
	// (connector.v1 User.guest). Events recorded before it carry only
	// userType and userPrincipalName, which IsGuest reads too.
	Guest bool `json:"guest,omitempty"`
	// Licensed is whether the user holds a licence, absent where the
	// directory has none (LDAP): see IsUnlicensed.
	Licensed OptBool `json:"licensed,omitempty"`
	// ProxyAddresses are the user's SMTP addresses as the directory
	// writes them: "SMTP:" before the primary address, "smtp:" before
	// each alias (connector.v1 User.proxy_addresses; other types are not
	// kept). See PrimarySMTP and Addresses.
	ProxyAddresses StringList `json:"proxyAddresses,omitempty"`
	// MailboxPurpose is what the user's mailbox is for, as the connector
	// read it: "user", "shared", "room", "equipment", "linked", "others",
	// MailboxNone when the connector was asked and found no mailbox,
	// MailboxUnknown when it could not say; empty when never read.
	MailboxPurpose string `json:"mailboxPurpose,omitempty"`
	// Attributes are the attributes the import policy asked the
	// connector for, by connector.Attributes' names ("manager" holds the
	// manager's object ID).
	Attributes StringMap `json:"attributes,omitempty"`
}

// PrimarySMTP returns the address of u's "SMTP:" proxy address, or "".
func (u User) PrimarySMTP() string {
	for a := range u.ProxyAddresses.All() {
		if v, ok := strings.CutPrefix(a, "SMTP:"); ok {
			return v
		}
	}
	return ""
}

// Addresses returns every address u is known by, lower-cased, each once:
// mail, user principal name and SMTP proxy addresses. Mail for any of
// them reaches the same person, so exclusions and duplicate detection
// match them all.
func (u User) Addresses() []string {
	var out []string
	add := func(a string) {
		a = strings.ToLower(strings.TrimSpace(a))
		if a != "" && strings.Contains(a, "@") && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	add(u.Mail)
	add(u.UserPrincipalName)
	for a := range u.SMTPAddresses() {
		add(a)
	}
	return out
}

// SMTPAddresses yields the addresses of u's SMTP proxy addresses, primary
// and aliases, without their prefix.
func (u User) SMTPAddresses() iter.Seq[string] {
	return func(yield func(string) bool) {
		for a := range u.ProxyAddresses.All() {
			if len(a) > 5 && strings.EqualFold(a[:5], "smtp:") && !yield(a[5:]) {
				return
			}
		}
	}
}

// IsGuest reports whether u is an external account: the connector said
// so, or, for a user recorded before connectors said so (always from
// Entra), Entra's userType is Guest or the UPN is an invited guest's
// (#EXT#).
func (u User) IsGuest() bool {
	return u.Guest || strings.EqualFold(u.UserType, "Guest") || strings.Contains(strings.ToUpper(u.UserPrincipalName), "#EXT#")
}

// IsUnlicensed reports whether u is known to hold no licence. A user of a
// directory without licences is not unlicensed. A user recorded before
// connectors said (always from Entra, which always sends userType) is
// unlicensed when its assignedLicenseCount is 0.
func (u User) IsUnlicensed() bool {
	if u.Licensed != OptUnset {
		return u.Licensed == OptFalse
	}
	return u.UserType != "" && u.AssignedLicenseCount == 0
}

// OptBool is a boolean a directory may not have: OptUnset (the zero value,
// left out of JSON by omitempty), OptTrue or OptFalse. Unlike *bool it keeps
// User comparable with ==, which the sync's change detection relies on.
type OptBool int8

// The values of an OptBool.
const (
	OptUnset OptBool = iota
	OptTrue
	OptFalse
)

// OptBoolOf returns OptTrue or OptFalse for v.
func OptBoolOf(v bool) OptBool {
	if v {
		return OptTrue
	}
	return OptFalse
}

// MarshalJSON writes true or false; OptUnset is left out by omitempty and
// written as null otherwise.
func (b OptBool) MarshalJSON() ([]byte, error) {
	switch b {
	case OptTrue:
		return []byte("true"), nil
	case OptFalse:
		return []byte("false"), nil
	}
	return []byte("null"), nil
}

// UnmarshalJSON reads true, false or null.
func (b *OptBool) UnmarshalJSON(data []byte) error {
	switch string(data) {
	case "true":
		*b = OptTrue
	case "false":
		*b = OptFalse
	case "null":
		*b = OptUnset
	default:
		return fmt.Errorf("licensed: want true, false or null, got %.20s", data)
	}
	return nil
}

// Group is a directory group as the directory now describes it (the data
// of TypeGroupChanged). Members are recorded by TypeGroupMembersChanged.
type Group struct {
	ID              string   `json:"id"`
	DisplayName     string   `json:"displayName,omitempty"`
	Mail            string   `json:"mail,omitempty"`
	GroupTypes      []string `json:"groupTypes"`
	MailEnabled     bool     `json:"mailEnabled"`
	SecurityEnabled bool     `json:"securityEnabled"`
	// Kind is the group's kind as its connector classified it
	// (connector.v1 Group.kind): "unified", "security", "mail_security"
	// or "distribution". Events recorded before kinds leave it out; see
	// KindOf.
	Kind string `json:"kind,omitempty"`
}

// KindOf returns g's kind: the connector's, or for a group recorded
// before connectors classified groups (always from Entra, or from a plugin
// built before kinds), Entra's classification of its groupTypes,
// mailEnabled and securityEnabled, as the Entra admin center shows it. It
// returns "" for a group of no kind (neither mail- nor security-enabled),
// which no policy selects.
func (g Group) KindOf() string {
	if g.Kind != "" {
		return g.Kind
	}
	for _, t := range g.GroupTypes {
		if strings.EqualFold(t, "Unified") {
			return "unified"
		}
	}
	switch {
	case g.SecurityEnabled && g.MailEnabled:
		return "mail_security"
	case g.SecurityEnabled:
		return "security"
	case g.MailEnabled:
		return "distribution"
	}
	return ""
}

// Removed is the data of TypeUserRemoved and TypeGroupRemoved.
type Removed struct {
	ID string `json:"id"`
	// Reason: "missing" (absent from a complete read), "deleted" or
	// "changed" (soft-deleted) as the directory reported it.
	Reason string `json:"reason"`
}

// MembersChanged is the data of TypeGroupMembersChanged: user object IDs,
// sorted, at most MaxMembersPerEvent in all.
type MembersChanged struct {
	GroupID string   `json:"groupId"`
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	// AddedGroups and RemovedGroups are group object IDs: groups nested
	// in this one as direct members (connector.v1 Membership's
	// added_group_ids). The import policy expands them (nested_groups).
	AddedGroups   []string `json:"addedGroups,omitempty"`
	RemovedGroups []string `json:"removedGroups,omitempty"`
}

// MaxMembersPerEvent keeps membership events far below NATS's 1 MiB
// default message size whatever the group size.
const MaxMembersPerEvent = 1000

// Bounds of a recipient, which keep a recipient event (and its KV value)
// below the stream's largest message (1 MiB: store.StreamConfig's
// MaxMsgSize and nats-server's default max_payload, which the embedded
// server keeps) whatever the directory and the jobs did: the largest
// possible recipient event is 0.77 MiB, leaving an eighth of the limit
// for fields to come (policy's TestLargestRecipientEventFits builds it).
// policy.Merge applies them to every recipient a job writes. Every other
// field of a recipient is bounded where it comes in: names and group
// names at 256 characters (jobs.MaxTextRunes), the email at 254 bytes
// (RFC 5321), the object ID at 64 characters (the intake's check), the
// connector name at 63 (plugins.hcl).
const (
	// MaxRecipientTags bounds a recipient's tags. Append-mode jobs add
	// their tags to those a recipient has: beyond this, new tags are not
	// added (the job's summary warns and counts them); a job with
	// tag_mode = "replace" resets them.
	MaxRecipientTags = 100
	// MaxRecipientGroups bounds the groups shown on a recipient: the
	// first ones by display name are kept, the rest counted in the job's
	// summary. A group name is at most 256 characters, so 500 of them are
	// at most ~770 KB in the worst JSON escaping.
	MaxRecipientGroups = 500
)

// Recipient statuses.
const (
	RecipientActive   = "active"
	RecipientArchived = "archived"
)

// Recipient is a phishing-simulation recipient: the import policy applied
// to a directory user. Its JSON form is also the read model in KV.
type Recipient struct {
	// ID is stable for the life of the recipient: connector and object ID.
	ID          string   `json:"id"`
	Connector   string   `json:"connector"`
	ObjectID    string   `json:"objectId"`
	Email       string   `json:"email"`
	DisplayName string   `json:"displayName"`
	GivenName   string   `json:"givenName"`
	Surname     string   `json:"surname"`
	Department  string   `json:"department"`
	JobTitle    string   `json:"jobTitle"`
	Groups      []string `json:"groups"`
	Tags        []string `json:"tags"`
	Status      string   `json:"status"`
	// UpdatedAt is the time of the event that last changed the recipient.
	UpdatedAt time.Time `json:"updatedAt"`
	// Aliases are the user's other SMTP addresses (its proxyAddresses
	// but the one in Email), lower-cased, sorted. Mail to them reaches
	// the same person.
	Aliases []string `json:"aliases,omitempty"`
	// Language is the user's preferred language (a BCP 47 tag such as
	// "en-US"), for training in that language.
	Language string `json:"language,omitempty"`
	// ManagerID is the object ID of the user's manager in the same
	// directory; ManagerEmail the manager's email when the manager is a
	// directory user with one.
	ManagerID    string `json:"managerId,omitempty"`
	ManagerEmail string `json:"managerEmail,omitempty"`
	// Attributes are the fields the import policy's attributes block
	// maps from directory attributes, by the block's names (e.g. "site"
	// from officeLocation).
	Attributes map[string]string `json:"attributes,omitempty"`
}

// RecipientChange is the data of the recipient event types: the recipient
// as it is after the decision (its last state, for removed), the fields
// that changed, and why.
type RecipientChange struct {
	Recipient Recipient `json:"recipient"`
	// Changed names the recipient fields that changed (updated only).
	Changed []string `json:"changed,omitempty"`
	// Reason says why, e.g. "user has a mail address", "user left the directory".
	Reason string `json:"reason"`
}

// Claim is the data of TypeConnectorClaimed: a dirsyncd replica took the
// connector's lease at Epoch and, with this event, fenced off every
// writer of an earlier epoch.
type Claim struct {
	Connector string `json:"connector"`
	// Epoch is the lease's revision when the replica took it; epochs of
	// one connector only rise.
	Epoch uint64 `json:"epoch"`
	// Replica names the dirsyncd that holds the connector from now on.
	Replica string `json:"replica"`
	// Previous is the epoch of the claim this one supersedes (0: the
	// connector's first claim).
	Previous uint64 `json:"previous,omitempty"`
}
