package api

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/dirsync/dirsync/projections"
)

// Group is the answer to GET /v1/groups/{id}: the group and its user
// members.
type Group struct {
	projections.GroupView
	// MemberList is the group's user members, sorted by email (members
	// without one last, by object ID).
	MemberList []GroupMember `json:"memberList"`
}

// GroupMember is one user member of a group.
type GroupMember struct {
	// ObjectID is the user's directory object ID.
	ObjectID string `json:"objectId"`
	// RecipientID is the user's recipient ID, absent when the user is not
	// a recipient (e.g. no email, or excluded by the import policy).
	RecipientID string `json:"recipientId,omitempty"`
	// Email is the recipient's email, or else the user's mail.
	Email       string `json:"email,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
}

func (s *Server) groups(w http.ResponseWriter, r *http.Request) {
	if !s.checkConnectorFilter(w, r) || !noCursor(w, r) {
		return
	}
	connector := r.URL.Query().Get("connector")
	list := []projections.GroupView{}
	s.proj.View(func(ps *projections.State) {
		for c, d := range ps.Directories {
			if connector != "" && c != connector {
				continue
			}
			for id := range d.Groups {
				if g := ps.GroupView(c, id); g != nil {
					list = append(list, *g)
				}
			}
		}
	})
	slices.SortFunc(list, func(a, b projections.GroupView) int {
		return cmp.Or(strings.Compare(a.Connector, b.Connector), strings.Compare(a.DisplayName, b.DisplayName),
			strings.Compare(a.ID, b.ID))
	})
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) group(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	connector, groupID, ok := splitID(id)
	if !ok {
		writeErr(w, http.StatusBadRequest, fmt.Sprintf("group ID %q: want <connector>.<groupId>, e.g. demo.7d1e…", id))
		return
	}
	var out *Group
	s.proj.View(func(ps *projections.State) {
		g := ps.GroupView(connector, groupID)
		if g == nil {
			return
		}
		out = &Group{GroupView: *g, MemberList: []GroupMember{}}
		d := ps.Directories[connector]
		for uid := range d.Members[groupID] {
			m := GroupMember{ObjectID: uid}
			if u, ok := d.Users[uid]; ok {
				m.Email, m.DisplayName = u.Mail, u.DisplayName
			}
			if rc, ok := ps.Recipients[connector][uid]; ok {
				m.RecipientID, m.Email = rc.ID, rc.Email
				if m.DisplayName == "" {
					m.DisplayName = rc.DisplayName
				}
			}
			out.MemberList = append(out.MemberList, m)
		}
	})
	if out == nil {
		writeErr(w, http.StatusNotFound, "no group with ID "+strconv.Quote(id))
		return
	}
	slices.SortFunc(out.MemberList, func(a, b GroupMember) int {
		if (a.Email == "") != (b.Email == "") {
			if a.Email == "" {
				return 1
			}
			return -1
		}
		return cmp.Or(strings.Compare(strings.ToLower(a.Email), strings.ToLower(b.Email)), strings.Compare(a.ObjectID, b.ObjectID))
	})
	writeJSON(w, http.StatusOK, out)
}
