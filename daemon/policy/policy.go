// Package policy decides who becomes a recipient: the import policy applied
// to a connector's directory. It is a pure function of the directory, so
// the same directory always yields the same recipients.
package policy

import (
	"sort"

	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// Policy is a connector's import policy. The zero value is the default:
// every user with a mail address becomes a recipient, carrying the display
// names of the synced groups it belongs to.
type Policy struct{}

// Decision is one recipient the policy wants, and why.
type Decision struct {
	Recipient events.Recipient
	Reason    string
}

// Decide returns the recipients a connector's directory yields, keyed by
// directory object ID. Recipient.UpdatedAt is left zero for the caller.
func (p Policy) Decide(connector string, d *projections.Directory) map[string]Decision {
	groupsOf := map[string][]string{}
	for gid, members := range d.Members {
		g, ok := d.Groups[gid]
		if !ok {
			continue
		}
		for uid := range members {
			groupsOf[uid] = append(groupsOf[uid], g.DisplayName)
		}
	}
	out := make(map[string]Decision, len(d.Users))
	for id, u := range d.Users {
		if u.Mail == "" {
			continue
		}
		groups := groupsOf[id]
		sort.Strings(groups)
		if groups == nil {
			groups = []string{}
		}
		out[id] = Decision{
			Recipient: events.Recipient{
				ID:          connector + "." + id,
				Connector:   connector,
				ObjectID:    id,
				Email:       u.Mail,
				DisplayName: u.DisplayName,
				GivenName:   u.GivenName,
				Surname:     u.Surname,
				Department:  u.Department,
				JobTitle:    u.JobTitle,
				Groups:      groups,
				Tags:        []string{},
				Status:      events.RecipientActive,
			},
			Reason: "user has a mail address",
		}
	}
	return out
}
