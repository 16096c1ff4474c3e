package graphsim

import "strings"

// transitiveMembers returns every member reachable from grp through
// nested groups, each once, in breadth-first order: the direct members
// first. Nested groups are members too (Graph lists them among the
// transitive members, https://learn.microsoft.com/graph/api/group-list-transitivemembers),
// and grp itself is never listed, even when a cycle leads back to it.
// A group is expanded once, so a cycle ends the walk.
func transitiveMembers(snap *snapshot, grp *Group) []Member {
	seen := map[string]bool{strings.ToLower(grp.ID): true}
	expanded := map[string]bool{strings.ToLower(grp.ID): true}
	var out []Member
	queue := []*Group{grp}
	for len(queue) > 0 {
		g := queue[0]
		queue = queue[1:]
		for _, m := range g.Members {
			k := strings.ToLower(m.ID)
			if !seen[k] {
				seen[k] = true
				out = append(out, m)
			}
			if m.ODataType != TypeGroup || expanded[k] {
				continue
			}
			expanded[k] = true
			if sub := snap.group(m.ID); sub != nil {
				queue = append(queue, sub)
			}
		}
	}
	return out
}

// listTransitiveMembers answers GET /groups/{id}/transitiveMembers and
// its /microsoft.graph.user cast, paged and selected as listMembers.
func (g *graphReq) listTransitiveMembers(id string, usersOnly bool) {
	g.listGroupMembers(id, "transitiveMembers", usersOnly, func(grp *Group) []Member { return transitiveMembers(g.snap, grp) })
}
