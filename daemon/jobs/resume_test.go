package jobs

import (
	"slices"
	"testing"

	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// A job carries on the one-time options of the connector's latest job
// that reached SAVING, when that one FAILED; jobs that never reached
// SAVING (they stored nothing) are passed over, and a COMPLETED one ends
// the search.
func TestResumeFrom(t *testing.T) {
	tags := &events.JobOptions{Tags: []string{"q4"}}
	hist := func(states ...string) []projections.StateChange {
		var h []projections.StateChange
		for _, s := range states {
			h = append(h, projections.StateChange{State: s})
		}
		return h
	}
	saving := hist(events.StatePending, events.StateStarted, events.StateRetrieving, events.StateProcessing, events.StateSaving, events.StateFailed)
	tests := []struct {
		name string
		jobs []*projections.Job // oldest first
		want string
	}{
		{"no job", nil, ""},
		{"failed in SAVING with tags", []*projections.Job{{ID: "1", State: events.StateFailed, Options: tags, History: saving}}, "1"},
		{"failed in SAVING without options", []*projections.Job{{ID: "1", State: events.StateFailed, History: saving}}, ""},
		{"failed in SAVING with only a dry run", []*projections.Job{{ID: "1", State: events.StateFailed, Options: &events.JobOptions{DryRun: true}, History: saving}}, ""},
		{"failed before SAVING", []*projections.Job{{ID: "1", State: events.StateFailed, Options: tags,
			History: hist(events.StatePending, events.StateRetrieving, events.StateFailed)}}, ""},
		{"then failed before SAVING and canceled", []*projections.Job{
			{ID: "1", State: events.StateFailed, Options: tags, History: saving},
			{ID: "2", State: events.StateFailed, History: hist(events.StatePending, events.StateFailed)},
			{ID: "3", State: events.StateCanceled, History: hist(events.StatePending, events.StateCanceled)}}, "1"},
		{"repaired by a completed job", []*projections.Job{
			{ID: "1", State: events.StateFailed, Options: tags, History: saving},
			{ID: "2", State: events.StateCompleted, History: hist(events.StatePending, events.StateSaving, events.StateCompleted)}}, ""},
		{"a retire job that failed in SAVING", []*projections.Job{{ID: "1", State: events.StateFailed, Options: &events.JobOptions{AllowMassRemoval: true},
			History: hist(events.StatePending, events.StateStarted, events.StateProcessing, events.StateSaving, events.StateFailed)}}, ""},
		{"another connector's", []*projections.Job{{ID: "1", Connector: "other", State: events.StateFailed, Options: tags, History: saving}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := projections.NewState()
			for _, j := range tt.jobs {
				if j.Connector == "" {
					j.Connector = "demo"
				}
				s.Jobs[j.ID] = j
			}
			s.Jobs["9"] = &projections.Job{ID: "9", Connector: "demo", State: events.StateStarted} // the job itself
			got, opts := resumeFrom(s, "demo", "9")
			if got != tt.want || (got != "" && !slices.Equal(opts.Tags, tags.Tags)) {
				t.Errorf("resumeFrom = %q %+v; want %q", got, opts, tt.want)
			}
		})
	}
}

func TestCarryOptions(t *testing.T) {
	inherited := &events.JobOptions{Tags: []string{"a", "b"}, TagMode: "append", AllowMassRemoval: true}
	tests := []struct {
		name string
		own  *events.JobOptions
		want events.JobOptions
	}{
		{"none of its own", nil, events.JobOptions{Tags: []string{"a", "b"}, TagMode: "append", AllowMassRemoval: true}},
		{"its own tags after", &events.JobOptions{Tags: []string{"b", "c"}}, events.JobOptions{Tags: []string{"a", "b", "c"}, TagMode: "append", AllowMassRemoval: true}},
		{"its own mode wins", &events.JobOptions{TagMode: "replace"}, events.JobOptions{Tags: []string{"a", "b"}, TagMode: "replace", AllowMassRemoval: true}},
		{"a dry run stays one", &events.JobOptions{DryRun: true}, events.JobOptions{Tags: []string{"a", "b"}, TagMode: "append", AllowMassRemoval: true, DryRun: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := carryOptions(inherited, tt.own)
			if !slices.Equal(got.Tags, tt.want.Tags) || got.TagMode != tt.want.TagMode || got.AllowMassRemoval != tt.want.AllowMassRemoval || got.DryRun != tt.want.DryRun {
				t.Errorf("carryOptions = %+v; want %+v", *got, tt.want)
			}
		})
	}
	if len(inherited.Tags) != 2 {
		t.Errorf("carryOptions changed the inherited options: %+v", inherited)
	}
}
