package console

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/daemon/jobs"
	"github.com/dirsync/dirsync/daemon/notify"
	"github.com/dirsync/dirsync/daemon/policy"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// RecipientPageSize is how many recipients a page of the console shows:
// it asks the API for this many and no more.
const RecipientPageSize = 50

// ChangePageSize is how many changes of a job one page shows.
const ChangePageSize = 200

// pageData is what every template gets.
type pageData struct {
	Title string
	// Nav is the navigation entry to mark current.
	Nav   string
	CSRF  string
	Error string
	// Data is the page's own content.
	Data any
}

// final reports whether a job state is final.
func final(state string) bool {
	return state == events.StateCompleted || state == events.StateFailed || state == events.StateCanceled
}

var funcs = template.FuncMap{
	"time": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04:05 UTC")
		case *time.Time:
			if v == nil || v.IsZero() {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04:05 UTC")
		}
		return "—"
	},
	"join":  func(s []string) string { return strings.Join(s, ", ") },
	"final": final,
	"lower": strings.ToLower,
	"path":  url.PathEscape,
	"add":   func(a, b int) int { return a + b },
	"add1":  func(a int) int { return a + 1 },
	"ms":    func(ms int64) string { return (time.Duration(ms) * time.Millisecond).Round(time.Millisecond).String() },
}

// pageNames are the templates that are whole pages; each is parsed with
// layout.html. fragments.html holds the blocks pages and scripts share.
var pageNames = []string{"login", "connectors", "connector", "jobs", "job", "recipients", "recipient", "explain"}

func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/fragments.html")
	if err != nil {
		return nil, fmt.Errorf("console templates: %w", err)
	}
	out := map[string]*template.Template{"fragments": base}
	for _, n := range pageNames {
		t, err := base.Clone()
		if err == nil {
			t, err = t.ParseFS(templateFS, "templates/"+n+".html")
		}
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", n, err)
		}
		out[n] = t
	}
	return out, nil
}

// render writes page with data; a template error (a defect) is logged
// and answered 500 without a half-written page.
func (c *Console) render(w http.ResponseWriter, code int, page string, data pageData) {
	var buf bytes.Buffer
	if err := c.pages[page].ExecuteTemplate(&buf, "layout.html", data); err != nil {
		c.log.Error("console: rendering a page", zap.String("page", page), zap.Error(err))
		http.Error(w, "the console could not render this page; see dirsyncd's log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// fragment writes one named block of fragments.html: what the script
// swaps into a live region. X-Dirsync-Final tells it to stop polling.
func (c *Console) fragment(w http.ResponseWriter, name string, data any, done bool) {
	var buf bytes.Buffer
	if err := c.pages["fragments"].ExecuteTemplate(&buf, name, data); err != nil {
		c.log.Error("console: rendering a fragment", zap.String("fragment", name), zap.Error(err))
		http.Error(w, "the console could not render this block; see dirsyncd's log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if done {
		w.Header().Set("X-Dirsync-Final", "true")
	}
	_, _ = w.Write(buf.Bytes())
}

// connectorRow is one connector's status as the console shows it.
type connectorRow struct {
	api.ConnectorStatus
	// State is the current job's state, else the last job's.
	State string
	// Job is the job State belongs to.
	Job string
}

func rowsOf(st api.Status) []connectorRow {
	out := make([]connectorRow, 0, len(st.Connectors))
	for _, cs := range st.Connectors {
		r := connectorRow{ConnectorStatus: cs, State: cs.LastState, Job: cs.LastJob}
		if cs.CurrentJob != "" {
			r.State, r.Job = cs.CurrentState, cs.CurrentJob
		}
		out = append(out, r)
	}
	return out
}

func (c *Console) status(r *http.Request) ([]connectorRow, error) {
	ctx, cancel := apiContext(r)
	defer cancel()
	st, err := c.api.Status(ctx)
	if err != nil {
		return nil, err
	}
	return rowsOf(st), nil
}

func (c *Console) connectorsPage(w http.ResponseWriter, r *http.Request, s *session) {
	rows, err := c.status(r)
	v := struct {
		Rows     []connectorRow
		Webhooks []notify.SinkStatus
	}{Rows: rows}
	d := pageData{Title: "Connectors", Nav: "connectors", CSRF: s.csrf}
	if err != nil {
		d.Error = err.Error()
	}
	ctx, cancel := apiContext(r)
	defer cancel()
	if n, err := c.api.Notify(ctx); err == nil {
		v.Webhooks = n.Webhooks
	}
	d.Data = v
	c.render(w, http.StatusOK, "connectors", d)
}

func (c *Console) connectorsFragment(w http.ResponseWriter, r *http.Request, _ *session) {
	rows, err := c.status(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	c.fragment(w, "connector-rows", rows, false)
}

// connectorView is a connector's page.
type connectorView struct {
	Name   string
	Row    *connectorRow
	Test   *api.TestResult
	Jobs   []api.Job
	Form   syncForm
	Status int
}

// syncForm is the "Sync now" form's values.
type syncForm struct {
	Tags              string
	TagMode           string
	UpdateExisting    string
	ExcludeUnlicensed string
	Full              bool
}

func (c *Console) connectorView(r *http.Request, name string) (connectorView, error) {
	v := connectorView{Name: name}
	rows, err := c.status(r)
	if err != nil {
		return v, err
	}
	for i := range rows {
		if rows[i].Connector == name {
			v.Row = &rows[i]
		}
	}
	if v.Row == nil {
		return v, fmt.Errorf("no connector named %q: the connectors page lists those plugins.hcl declares", name)
	}
	ctx, cancel := apiContext(r)
	defer cancel()
	v.Jobs, err = c.api.Jobs(ctx, name, 10)
	return v, err
}

func (c *Console) connectorPage(w http.ResponseWriter, r *http.Request, s *session) {
	v, err := c.connectorView(r, r.PathValue("name"))
	c.renderConnector(w, s, v, err)
}

func (c *Console) renderConnector(w http.ResponseWriter, s *session, v connectorView, err error) {
	d := pageData{Title: "Connector " + v.Name, Nav: "connectors", CSRF: s.csrf, Data: v}
	code := http.StatusOK
	if err != nil {
		d.Error = err.Error()
		code = http.StatusBadRequest
		if v.Row == nil {
			code = http.StatusNotFound
		}
	}
	if v.Status != 0 {
		code = v.Status
	}
	c.render(w, code, "connector", d)
}

func (c *Console) connectorFragment(w http.ResponseWriter, r *http.Request, _ *session) {
	rows, err := c.status(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	for _, row := range rows {
		if row.Connector == r.PathValue("name") {
			c.fragment(w, "connector-status", row, false)
			return
		}
	}
	http.NotFound(w, r)
}

func (c *Console) testConnection(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("name")
	v, err := c.connectorView(r, name)
	if err == nil {
		// A connection test may take its full two minutes (the API's own
		// bound); the page waits for it.
		var res api.TestResult
		res, err = c.api.Test(r.Context(), name)
		if err == nil {
			v.Test = &res
		}
	}
	c.renderConnector(w, s, v, err)
}

// parseSyncForm reads the "Sync now" form (and the buttons of a job page
// that repeat a job's options) into an API sync request.
func parseSyncForm(r *http.Request) (api.SyncRequest, syncForm, error) {
	f := syncForm{Tags: r.PostFormValue("tags"), TagMode: r.PostFormValue("tagMode"),
		UpdateExisting: r.PostFormValue("updateExisting"), ExcludeUnlicensed: r.PostFormValue("excludeUnlicensed"),
		Full: r.PostFormValue("full") != ""}
	req := api.SyncRequest{Full: f.Full}
	for _, t := range strings.Split(f.Tags, ",") {
		if t = strings.TrimSpace(t); t != "" {
			req.Tags = append(req.Tags, t)
		}
	}
	req.TagMode = f.TagMode
	tri := func(name, v string) (*bool, error) {
		switch v {
		case "":
			return nil, nil
		case "yes":
			b := true
			return &b, nil
		case "no":
			b := false
			return &b, nil
		}
		return nil, fmt.Errorf("%s must be yes, no or empty (the import policy's), not %q", name, v)
	}
	var err error
	if req.UpdateExisting, err = tri("update existing", f.UpdateExisting); err != nil {
		return req, f, err
	}
	if req.ExcludeUnlicensed, err = tri("exclude unlicensed", f.ExcludeUnlicensed); err != nil {
		return req, f, err
	}
	switch r.PostFormValue("action") {
	case "preview":
		req.DryRun = true
	case "sync":
	default:
		return req, f, fmt.Errorf("the form asked for %q; use Preview (dry run) or Sync now", r.PostFormValue("action"))
	}
	req.AllowMassRemoval = r.PostFormValue("allowMassRemoval") == "yes"
	return req, f, nil
}

func (c *Console) startSync(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("name")
	req, form, err := parseSyncForm(r)
	if err == nil {
		ctx, cancel := apiContext(r)
		defer cancel()
		var j api.Job
		if j, err = c.api.Sync(ctx, name, req); err == nil {
			http.Redirect(w, r, Prefix+"jobs/"+url.PathEscape(j.ID), http.StatusSeeOther)
			return
		}
	}
	v, verr := c.connectorView(r, name)
	v.Form = form
	if verr != nil {
		err = verr
	}
	c.renderConnector(w, s, v, err)
}

func (c *Console) jobsPage(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := apiContext(r)
	defer cancel()
	connector := r.URL.Query().Get("connector")
	jobs, err := c.api.Jobs(ctx, connector, 100)
	d := pageData{Title: "Jobs", Nav: "jobs", CSRF: s.csrf, Data: struct {
		Connector string
		Jobs      []api.Job
	}{connector, jobs}}
	if err != nil {
		d.Error = err.Error()
	}
	c.render(w, http.StatusOK, "jobs", d)
}

// jobView is a job's live block: its state, history and, once final,
// its counts, change list and what the admin can do next.
type jobView struct {
	Job     api.Job
	CSRF    string
	Final   bool
	DryRun  bool
	Changes []projections.Change
	// Total, Offset and Next page the change list.
	Total, Offset, Next, Prev int
	// Guard is true when the mass-removal guard stopped the job (or would
	// stop its real run): the console offers to approve.
	Guard bool
	// Repeat is the job's options for "Run this sync" as form values.
	Repeat     syncForm
	RepeatTags string
	ChangesErr string
}

func (c *Console) jobView(r *http.Request, s *session, id string) (jobView, error) {
	ctx, cancel := apiContext(r)
	defer cancel()
	j, err := c.api.Job(ctx, id)
	if err != nil {
		return jobView{}, err
	}
	v := jobView{Job: j, CSRF: s.csrf, Final: final(j.State), DryRun: j.DryRun()}
	if strings.Contains(j.Reason, jobs.GuardReason) {
		v.Guard = true
	}
	if j.Summary != nil {
		for _, w := range j.Summary.Warnings {
			if strings.Contains(w, jobs.GuardReason) {
				v.Guard = true
			}
		}
	}
	if o := j.Options; o != nil {
		v.Repeat = syncForm{Tags: strings.Join(o.Tags, ", "), TagMode: o.TagMode, Full: j.Full && j.RequestedBy != "schedule"}
		v.Repeat.UpdateExisting = triValue(o.UpdateExisting)
		v.Repeat.ExcludeUnlicensed = triValue(o.ExcludeUnlicensed)
	}
	if v.Final && j.State != events.StateCanceled {
		off, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		off = max(off, 0)
		off -= off % ChangePageSize
		ch, err := c.api.ChangeWindow(ctx, id, off, ChangePageSize)
		if err != nil {
			v.ChangesErr = err.Error()
		} else {
			v.Total, v.Offset, v.Changes = ch.Total, off, ch.Changes
			if off+ChangePageSize < v.Total {
				v.Next = off + ChangePageSize
			}
			v.Prev = max(off-ChangePageSize, 0)
		}
	}
	return v, nil
}

func triValue(b *bool) string {
	switch {
	case b == nil:
		return ""
	case *b:
		return "yes"
	}
	return "no"
}

func (c *Console) jobPage(w http.ResponseWriter, r *http.Request, s *session) {
	v, err := c.jobView(r, s, r.PathValue("id"))
	d := pageData{Title: "Job " + r.PathValue("id"), Nav: "jobs", CSRF: s.csrf, Data: v}
	code := http.StatusOK
	if err != nil {
		d.Error, code = err.Error(), http.StatusNotFound
	}
	c.render(w, code, "job", d)
}

func (c *Console) jobFragment(w http.ResponseWriter, r *http.Request, s *session) {
	v, err := c.jobView(r, s, r.PathValue("id"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	c.fragment(w, "job-live", v, v.Final)
}

func (c *Console) cancelJob(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := apiContext(r)
	defer cancel()
	id := r.PathValue("id")
	if _, err := c.api.Cancel(ctx, id); err != nil {
		v, _ := c.jobView(r, s, id)
		c.render(w, http.StatusConflict, "job", pageData{Title: "Job " + id, Nav: "jobs", CSRF: s.csrf, Error: err.Error(), Data: v})
		return
	}
	http.Redirect(w, r, Prefix+"jobs/"+url.PathEscape(id), http.StatusSeeOther)
}

// recipientsView is one page of the recipient list.
type recipientsView struct {
	Filter     api.RecipientFilter
	Connectors []string
	Items      []events.Recipient
	// Query is the filter as a query string, for the export and paging
	// links; NextCursor asks the API for the next page.
	Query      template.URL
	NextCursor string
	Paged      bool
}

func filterOf(q url.Values) api.RecipientFilter {
	return api.RecipientFilter{Connector: q.Get("connector"), Status: q.Get("status"), Tag: q.Get("tag"), Group: q.Get("group")}
}

func filterQuery(f api.RecipientFilter) url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"connector": f.Connector, "status": f.Status, "tag": f.Tag, "group": f.Group} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

func (c *Console) recipientsPage(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := apiContext(r)
	defer cancel()
	q := r.URL.Query()
	v := recipientsView{Filter: filterOf(q), Paged: q.Get("cursor") != ""}
	v.Query = template.URL(filterQuery(v.Filter).Encode())
	d := pageData{Title: "Recipients", Nav: "recipients", CSRF: s.csrf}
	code := http.StatusOK
	if st, err := c.api.Status(ctx); err == nil {
		for _, cs := range st.Connectors {
			v.Connectors = append(v.Connectors, cs.Connector)
		}
	}
	page, err := c.api.RecipientPage(ctx, v.Filter, RecipientPageSize, q.Get("cursor"))
	if err != nil {
		d.Error, code = err.Error(), http.StatusBadRequest
	}
	v.Items, v.NextCursor = page.Items, page.NextCursor
	d.Data = v
	c.render(w, code, "recipients", d)
}

// exportRecipients streams the API's CSV export with the page's filter:
// the browser downloads it as the API writes it, never held whole here.
func (c *Console) exportRecipients(w http.ResponseWriter, r *http.Request, _ *session) {
	q := filterQuery(filterOf(r.URL.Query()))
	q.Set("format", api.FormatCSV)
	in, err := http.NewRequestWithContext(r.Context(), http.MethodGet, "/v1/recipients/export?"+q.Encode(), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	in.RemoteAddr = r.RemoteAddr
	in.Header.Set("X-Dirsync-Requested-By", "console")
	if w.Header().Get("Content-Disposition") == "" {
		w.Header().Set("Content-Disposition", `attachment; filename="recipients.csv"`)
	}
	c.apiH.ServeHTTP(w, in)
}

// recipientView is a recipient's page: the recipient, its history and
// why the import policy takes it.
type recipientView struct {
	Recipient  events.Recipient
	History    []projections.Change
	HistoryErr string
	Explained  []policy.Explanation
	ExplainErr string
}

func (c *Console) recipientPage(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := apiContext(r)
	defer cancel()
	id := r.PathValue("id")
	d := pageData{Title: "Recipient", Nav: "recipients", CSRF: s.csrf}
	rc, err := c.api.Recipient(ctx, id)
	if err != nil {
		d.Error = err.Error()
		c.render(w, http.StatusNotFound, "recipient", d)
		return
	}
	v := recipientView{Recipient: rc}
	d.Title = "Recipient " + rc.Email
	if h, err := c.api.History(ctx, rc.Email); err != nil {
		v.HistoryErr = err.Error()
	} else {
		v.History = h.Changes[rc.ID]
		slices.Reverse(v.History) // newest first
	}
	if ex, err := c.api.Explain(ctx, rc.ObjectID, rc.Connector); err != nil {
		v.ExplainErr = err.Error()
	} else {
		v.Explained = ex.Explanations
	}
	d.Data = v
	c.render(w, http.StatusOK, "recipient", d)
}

// explainPage says, for any directory user (a recipient or not), why the
// import policy takes or skips them: the "why" of a job's change list
// and of the skip counts.
func (c *Console) explainPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	v := struct {
		User, Connector string
		Explained       []policy.Explanation
	}{User: strings.TrimSpace(q.Get("user")), Connector: q.Get("connector")}
	d := pageData{Title: "Explain", Nav: "recipients", CSRF: s.csrf}
	code := http.StatusOK
	if v.User != "" {
		ctx, cancel := apiContext(r)
		defer cancel()
		ex, err := c.api.Explain(ctx, v.User, v.Connector)
		if err != nil {
			d.Error, code = err.Error(), http.StatusBadRequest
		}
		v.Explained = ex.Explanations
	}
	d.Data = v
	c.render(w, code, "explain", d)
}
