package azuread

import (
	"bufio"
	"context"
	"errors"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/go-plugin"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/connectors/graphsim"
	"github.com/dirsync/dirsync/internal/testenv"
)

// graphRequests parses graphsim's request log into the Graph requests'
// URLs, in the order they were served.
func graphRequests(t *testing.T, log string) []*url.URL {
	t.Helper()
	var out []*url.URL
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		// "graphsim: 2006/01/02 15:04:05.000000 GET /v1.0/groups?... 200 1ms"
		f := strings.Fields(sc.Text())
		i := slices.Index(f, "GET")
		if i < 0 || i+1 >= len(f) || !strings.HasPrefix(f[i+1], "/v1.0/") {
			continue
		}
		u, err := url.Parse(f[i+1])
		if err != nil {
			t.Fatalf("request log line %q: %v", sc.Text(), err)
		}
		out = append(out, u)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// noKindGroupID is a group added to the simulated tenant that is neither
// mail- nor security-enabled: no group_types selects it.
const noKindGroupID = "0b5e7c1d-2f3a-4b6c-8d9e-0a1b2c3d4e5f"

// startKindsSim starts a 300-user, 40-group tenant (plus one group of no
// kind) that logs its requests into the returned buffer.
func startKindsSim(t *testing.T) (*graphsim.Sim, *testenv.LockedBuffer) {
	t.Helper()
	reqLog := &testenv.LockedBuffer{}
	sim := startSim(t, graphsim.Config{Users: 300, Groups: 40, Seed: 11, Log: reqLog})
	err := sim.Mutate(func(tn *graphsim.Tenant) {
		g := graphsim.Group{ID: noKindGroupID, DisplayName: "Neither mail nor security", MailNickname: "neither"}
		for _, u := range tn.Users[:5] {
			g.Members = append(g.Members, graphsim.Member{ID: u.ID, ODataType: graphsim.TypeUser})
		}
		tn.Groups = append(tn.Groups, g)
	})
	if err != nil {
		t.Fatal(err)
	}
	return sim, reqLog
}

func TestSyncGroupTypes(t *testing.T) {
	all := connector.GroupKinds()
	tests := []struct {
		name       string
		groupTypes []string
		want       []string // kinds expected
	}{
		{name: "empty", groupTypes: nil, want: []string{connector.GroupUnified}},
		{name: "unified", groupTypes: []string{connector.GroupUnified}, want: []string{connector.GroupUnified}},
		{name: "unified twice", groupTypes: []string{connector.GroupUnified, connector.GroupUnified}, want: []string{connector.GroupUnified}},
		{name: "security", groupTypes: []string{connector.GroupSecurity}, want: []string{connector.GroupSecurity}},
		{name: "mail_security and distribution", groupTypes: []string{connector.GroupMailSecurity, connector.GroupDistribution},
			want: []string{connector.GroupMailSecurity, connector.GroupDistribution}},
		{name: "all four", groupTypes: all, want: all},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, reqLog := startKindsSim(t)
			tenant := sim.Tenant()
			log, logs := logBuffer()
			var batches []*connectorv1.SyncBatch
			err := New(log).Sync(context.Background(), &connectorv1.SyncRequest{Config: simConfig(t, sim, nil), GroupTypes: tt.groupTypes},
				func(b *connectorv1.SyncBatch) error {
					batches = append(batches, b)
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
			assertNoSecrets(t, "log", logs.String())

			// What graphsim holds of the requested kinds, in listing order.
			var wantGroups []*graphsim.Group
			var wantSkipped int64
			wantMembers, wantNested := map[string][]string{}, map[string][]string{}
			kindsSeen := map[string]int{}
			for i := range tenant.Groups {
				g := &tenant.Groups[i]
				kind := entraKind(g.GroupTypes, g.MailEnabled, g.SecurityEnabled)
				kindsSeen[kind]++
				if !slices.Contains(tt.want, kind) {
					continue
				}
				wantGroups = append(wantGroups, g)
				for _, m := range g.Members {
					switch m.ODataType {
					case graphsim.TypeUser:
						wantMembers[g.ID] = append(wantMembers[g.ID], m.ID)
					case graphsim.TypeGroup:
						wantNested[g.ID] = append(wantNested[g.ID], m.ID)
					default:
						wantSkipped++
					}
				}
			}
			for _, k := range tt.want {
				if kindsSeen[k] == 0 {
					t.Fatalf("graphsim generated no %s group: the test proves nothing", k)
				}
			}
			if kindsSeen[""] != 1 {
				t.Fatalf("graphsim holds %d groups of no kind, want the 1 added", kindsSeen[""])
			}

			var gotGroups []*connectorv1.Group
			gotMembers, gotNested := map[string][]string{}, map[string][]string{}
			users := 0
			for i, b := range batches {
				n := len(b.GetUsers()) + len(b.GetGroups())
				users += len(b.GetUsers())
				gotGroups = append(gotGroups, b.GetGroups()...)
				for _, m := range b.GetMemberships() {
					n += len(m.GetAddedUserIds()) + len(m.GetAddedGroupIds())
					gotMembers[m.GetGroupId()] = append(gotMembers[m.GetGroupId()], m.GetAddedUserIds()...)
					if ids := m.GetAddedGroupIds(); len(ids) > 0 {
						gotNested[m.GetGroupId()] = append(gotNested[m.GetGroupId()], ids...)
					}
				}
				if n > connector.MaxBatchObjects {
					t.Errorf("batch %d holds %d objects", i, n)
				}
				if b.GetDone() != (i == len(batches)-1) {
					t.Errorf("batch %d: done = %v", i, b.GetDone())
				}
			}
			if users != len(tenant.Users) {
				t.Errorf("got %d users, want %d", users, len(tenant.Users))
			}

			// Groups: exactly those of the requested kinds, each once.
			var gotIDs, wantIDs []string
			for _, g := range gotGroups {
				gotIDs = append(gotIDs, g.GetId())
			}
			for _, g := range wantGroups {
				wantIDs = append(wantIDs, g.ID)
			}
			if !slices.Equal(sorted(gotIDs), sorted(wantIDs)) {
				t.Fatalf("got groups %v, want %v", gotIDs, wantIDs)
			}
			byID := map[string]*connectorv1.Group{}
			for _, g := range gotGroups {
				byID[g.GetId()] = g
			}
			for _, want := range wantGroups {
				got := byID[want.ID]
				if got.GetDisplayName() != want.DisplayName || got.GetMail() != want.Mail || !got.GetGroupTypesKnown() ||
					!slices.Equal(got.GetGroupTypes(), want.GroupTypes) ||
					got.MailEnabled == nil || got.GetMailEnabled() != want.MailEnabled ||
					got.SecurityEnabled == nil || got.GetSecurityEnabled() != want.SecurityEnabled {
					t.Errorf("group %s = %v, want %+v", want.ID, got, want)
				}
				if k := entraKind(got.GetGroupTypes(), got.GetMailEnabled(), got.GetSecurityEnabled()); !slices.Contains(tt.want, k) {
					t.Errorf("group %s sent as kind %q", want.ID, k)
				}
			}

			// Memberships: the user members of the kept groups, no others.
			for id, got := range gotMembers {
				want, ok := wantMembers[id]
				if !ok && !slices.Contains(wantIDs, id) {
					t.Errorf("members of group %s, which was not requested, were sent", id)
					continue
				}
				g, w := slices.Clone(got), slices.Clone(want)
				slices.Sort(g)
				slices.Sort(w)
				if !slices.Equal(g, w) {
					t.Errorf("group %s: got %d user members, want %d", id, len(got), len(want))
				}
			}
			for id, want := range wantMembers {
				if len(gotMembers[id]) == 0 && len(want) > 0 {
					t.Errorf("group %s: no members sent, want %d", id, len(want))
				}
			}

			// Group members (nesting) of the kept groups, whatever their
			// own kind: the host expands them through the groups it holds.
			if !maps.EqualFunc(gotNested, wantNested, func(a, b []string) bool { return slices.Equal(sorted(a), sorted(b)) }) {
				t.Errorf("group members %v, want %v", gotNested, wantNested)
			}

			last := batches[len(batches)-1]
			p := last.GetProgress()
			if !last.GetComplete() || p.GetGroups() != int64(len(wantGroups)) || p.GetUsers() != int64(len(tenant.Users)) ||
				p.GetSkippedMembers() != wantSkipped {
				t.Errorf("progress %v, want %d groups, %d users, %d skipped members", p, len(wantGroups), len(tenant.Users), wantSkipped)
			}

			// Requests: users/delta and groups/delta (with members) only,
			// unfiltered whatever the kinds (delta takes no $filter).
			var usersPages, groupsPages int
			for _, u := range graphRequests(t, reqLog.String()) {
				q := u.Query()
				switch u.Path {
				case "/v1.0/users/delta":
					usersPages++
				case "/v1.0/groups/delta":
					groupsPages++
					if q.Get("$filter") != "" {
						t.Errorf("groups/delta with $filter %q", q.Get("$filter"))
					}
					if sel := q.Get("$select"); groupsPages == 1 {
						for _, p := range []string{"groupTypes", "mailEnabled", "securityEnabled", "members"} {
							if !slices.Contains(strings.Split(sel, ","), p) {
								t.Errorf("groups/delta $select %q lacks %s", sel, p)
							}
						}
					}
				default:
					t.Errorf("a request that is not a delta query: %s", u)
				}
			}
			if usersPages != 1 || groupsPages < 1 {
				t.Errorf("%d users pages, %d groups pages", usersPages, groupsPages)
			}
			if sim.Requests() != p.GetRequests() {
				t.Errorf("graphsim served %d requests, progress counts %d", sim.Requests(), p.GetRequests())
			}
			t.Logf("%d groups, %d batches, %d requests, progress %v", len(wantGroups), len(batches), sim.Requests(), p)
		})
	}
}

func TestSyncUnknownGroupType(t *testing.T) {
	sim, _ := startKindsSim(t)
	cfg := simConfig(t, sim, nil)
	for _, bad := range []string{"dynamic", "", "Security"} {
		t.Run(bad, func(t *testing.T) {
			before := sim.Requests()
			sent := 0
			err := New(nil).Sync(context.Background(), &connectorv1.SyncRequest{Config: cfg, GroupTypes: []string{connector.GroupUnified, bad}},
				func(*connectorv1.SyncBatch) error { sent++; return nil })
			if !errors.Is(err, ErrUnknownGroupType) {
				t.Fatalf("want ErrUnknownGroupType, got %v", err)
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.Contains(msg, `"`+bad+`"`) {
				t.Errorf("error %q does not name %q", msg, bad)
			}
			for _, k := range connector.GroupKinds() {
				if !strings.Contains(msg, k) {
					t.Errorf("error %q does not list %q", msg, k)
				}
			}
			if sent != 0 || sim.Requests() != before {
				t.Errorf("sent %d batches and made %d requests before failing", sent, sim.Requests()-before)
			}
		})
	}

	// The host sees the message through the plugin's gRPC service.
	t.Run("over gRPC", func(t *testing.T) {
		client, server := plugin.TestPluginGRPCConn(t, false, connector.PluginSet(New(nil)))
		t.Cleanup(func() { _ = client.Close(); server.Stop() })
		raw, err := client.Dispense(connector.PluginName)
		if err != nil {
			t.Fatal(err)
		}
		err = raw.(connector.Connector).Sync(context.Background(), &connectorv1.SyncRequest{Config: cfg, GroupTypes: []string{"dynamic"}},
			func(*connectorv1.SyncBatch) error { return nil })
		if err == nil || !strings.Contains(err.Error(), `"dynamic"`) || !strings.Contains(err.Error(), connector.GroupMailSecurity) {
			t.Errorf("over gRPC: %v", err)
		}
	})
}

func TestParseGroupKinds(t *testing.T) {
	tests := []struct {
		in   []string
		want []string
	}{
		{nil, []string{connector.GroupUnified}},
		{[]string{}, []string{connector.GroupUnified}},
		{[]string{connector.GroupDistribution, connector.GroupSecurity, connector.GroupDistribution},
			[]string{connector.GroupSecurity, connector.GroupDistribution}},
		{connector.GroupKinds(), connector.GroupKinds()},
	}
	for _, tt := range tests {
		k, err := parseGroupKinds(tt.in)
		if err != nil {
			t.Fatalf("%v: %v", tt.in, err)
		}
		if got := k.names(); !slices.Equal(got, tt.want) {
			t.Errorf("%v: kinds %v, want %v", tt.in, got, tt.want)
		}
	}
}
