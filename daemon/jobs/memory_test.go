package jobs

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// Across 50 jobs that each change every recipient (a new tag each time),
// what the read models hold in memory does not grow with the changes: the
// directory, recipients and former emails stay as they were, and each job
// adds the same small record (its read model, its states, where its
// changes are in the stream) however much it changed. Change lists are
// read from the stream, whole, when asked. Measured with the read
// models' own size counters (projections.Size), not RSS.
func TestMemoryDoesNotGrowWithJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 50 jobs")
	}
	const users, jobs = 30, 50
	d := &dir{members: map[string][]string{}}
	for i := range users {
		id := fmt.Sprintf("u%02d", i)
		d.users = append(d.users, user(id, id+"@contoso.com", "User "+id, "Sales"))
		d.members["g1"] = append(d.members["g1"], id)
	}
	d.groups = []*connectorv1.Group{{Id: "g1", DisplayName: proto.String("Sales Team"), GroupTypes: []string{"Unified"}, GroupTypesKnown: true}}
	e := startEnv(t, d)

	var sizes []projections.Size
	var last string
	for i := range jobs {
		j := e.syncWith(&events.JobOptions{Tags: []string{fmt.Sprintf("wave-%02d", i)}, TagMode: events.TagModeReplace})
		if j.State != events.StateCompleted {
			t.Fatalf("job %d: %s %s", i, j.State, j.Reason)
		}
		if c := e.changes(j.ID); len(c) != users {
			t.Fatalf("job %d changed %d recipients; want all %d (each job retags them)", i, len(c), users)
		}
		sizes = append(sizes, e.proj.Size())
		last = j.ID
	}
	first, end := sizes[0], sizes[jobs-1]
	flat := func(name string, a, b int) {
		if a != b {
			t.Errorf("%s: %d after the first job, %d after the %dth; want no growth", name, a, b, jobs)
		}
	}
	flat("users", first.Users, end.Users)
	flat("groups", first.Groups, end.Groups)
	flat("memberships", first.Memberships, end.Memberships)
	flat("recipients", first.Recipients, end.Recipients)
	flat("former emails", first.FormerEmails, end.FormerEmails)
	if first.Recipients != users {
		t.Errorf("%d recipients; want %d", first.Recipients, users)
	}
	// One job, one record: the same growth for each, whatever it changed
	// (30 changes a job, 1,500 in all, none of them held).
	perJob := func(s projections.Size) [3]int { return [3]int{s.Jobs, s.JobStates, s.Spans} }
	step := [3]int{sizes[1].Jobs - first.Jobs, sizes[1].JobStates - first.JobStates, sizes[1].Spans - first.Spans}
	if step != [3]int{1, 6, 1} {
		t.Errorf("a job added %v (jobs, job states, spans); want [1 6 1]", step)
	}
	for i := 1; i < jobs; i++ {
		a, b := perJob(sizes[i-1]), perJob(sizes[i])
		if got := [3]int{b[0] - a[0], b[1] - a[1], b[2] - a[2]}; got != step {
			t.Errorf("job %d added %v (jobs, job states, spans); the second added %v", i, got, step)
		}
	}
	// The last job's change list is still whole, read from the stream.
	if c := e.changes(last); len(c) != users || c[0].Kind != "updated" {
		t.Errorf("the last job's changes: %d, first %+v", len(c), c[0])
	}
}
