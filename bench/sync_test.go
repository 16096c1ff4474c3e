package bench

import (
	"context"
	"testing"
	"time"

	"github.com/dirsync/dirsync/connectors/graphsim"
)

// minDeltaPages predicts exactly the pages graphsim serves at the
// largest page size, including groups split across pages, and the raw
// client reads the whole tenant and its changes.
func TestMinDeltaPagesMatchesGraphsim(t *testing.T) {
	for _, tc := range []struct {
		users, groups, perPage int
	}{
		{0, 0, 0},
		{5, 2, 0},
		{2500, 120, 0},  // All Company (2,500 members) split over pages
		{3000, 300, 37}, // small member budget: many splits and carries
	} {
		sim, err := graphsim.New(graphsim.Config{Users: tc.users, Groups: tc.groups, Seed: 3, ClientSecret: "bench-test-secret", DeltaMembersPerPage: tc.perPage})
		if err != nil {
			t.Fatal(err)
		}
		if err := sim.Start("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		res, err := rawFullRead(ctx, sim)
		if err != nil {
			t.Fatal(err)
		}
		u, g := minDeltaPages(sim.Tenant(), sim.Config().DeltaMembersPerPage)
		if res.Users.Pages != u || res.Groups.Pages != g {
			t.Errorf("%+v: graphsim served %d users and %d groups pages, minDeltaPages says %d and %d", tc, res.Users.Pages, res.Groups.Pages, u, g)
		}
		if res.Users.Objects != tc.users || res.Groups.Members != memberships(sim.Tenant()) {
			t.Errorf("%+v: read %d users and %d members, want %d and %d", tc, res.Users.Objects, res.Groups.Members, tc.users, memberships(sim.Tenant()))
		}
		if tc.users > 0 {
			lu, lg, err := rawLatestLinks(ctx, sim)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sim.Churn(20, 1); err != nil {
				t.Fatal(err)
			}
			d, err := rawDelta(ctx, sim, lu, lg)
			if err != nil {
				t.Fatal(err)
			}
			if d.Pages() < 2 || d.Users.Objects == 0 {
				t.Errorf("%+v: delta after 20 changes: %s, %d users", tc, d, d.Users.Objects)
			}
		}
		cancel()
		_ = sim.Close()
	}
}
