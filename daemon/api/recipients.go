package api

import (
	"bytes"
	"container/heap"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dirsync/dirsync/daemon/policy"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// Page sizes of GET /v1/recipients.
const (
	// DefaultRecipientLimit is the page size without a limit parameter.
	DefaultRecipientLimit = 500
	// MaxRecipientLimit is the largest page size a request may ask for.
	MaxRecipientLimit = 10000
)

// Export formats of GET /v1/recipients/export.
const (
	FormatCSV  = "csv"
	FormatJSON = "json"
)

// RecipientPage is the answer to GET /v1/recipients: one page of
// recipients sorted by email (case-insensitively), then ID.
type RecipientPage struct {
	Items []events.Recipient `json:"items"`
	// NextCursor, passed as the cursor parameter, asks for the next page;
	// it is absent on the last page.
	NextCursor string `json:"nextCursor,omitempty"`
}

// RecipientFilter narrows a recipient list or export. Empty fields match
// everything.
type RecipientFilter struct {
	// Connector keeps one connector's recipients.
	Connector string
	// Status keeps "active" or "archived" recipients.
	Status string
	// Tag keeps recipients with this tag.
	Tag string
	// Group keeps members of the group with this display name (any case).
	Group string
}

// query adds the filter's set fields to q.
func (f RecipientFilter) query(q url.Values) {
	for k, v := range map[string]string{"connector": f.Connector, "status": f.Status, "tag": f.Tag, "group": f.Group} {
		if v != "" {
			q.Set(k, v)
		}
	}
}

func (f RecipientFilter) match(r events.Recipient) bool {
	return (f.Status == "" || r.Status == f.Status) && (f.Tag == "" || slices.Contains(r.Tags, f.Tag)) &&
		(f.Group == "" || slices.ContainsFunc(r.Groups, func(g string) bool { return strings.EqualFold(g, f.Group) }))
}

// parseFilter reads the filter parameters shared by list and export.
func parseFilter(q url.Values) (RecipientFilter, error) {
	f := RecipientFilter{Connector: q.Get("connector"), Status: q.Get("status"), Tag: q.Get("tag"), Group: q.Get("group")}
	if f.Status != "" && f.Status != events.RecipientActive && f.Status != events.RecipientArchived {
		return f, fmt.Errorf("status must be %s or %s, not %q", events.RecipientActive, events.RecipientArchived, f.Status)
	}
	return f, nil
}

// sortKey orders recipients: lower-cased email, then ID (unique). A
// cursor is the sort key of the last recipient of a page, so a page
// starts after it whatever was added or removed in between.
type sortKey struct {
	Email string `json:"e"`
	ID    string `json:"i"`
}

func keyOf(r events.Recipient) sortKey { return sortKey{Email: strings.ToLower(r.Email), ID: r.ID} }

func (k sortKey) compare(o sortKey) int {
	if c := strings.Compare(k.Email, o.Email); c != 0 {
		return c
	}
	return strings.Compare(k.ID, o.ID)
}

// encodeCursor renders a sort key as an opaque URL-safe cursor.
func encodeCursor(k sortKey) string {
	b, _ := json.Marshal(k) // two strings: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reads a cursor made by encodeCursor.
func decodeCursor(s string) (sortKey, error) {
	const hint = "cursor is not a nextCursor this API returned (start again without cursor)"
	var k sortKey
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return k, fmt.Errorf("%s: %w", hint, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&k); err != nil {
		return k, fmt.Errorf("%s: %w", hint, err)
	}
	if k.ID == "" || dec.More() {
		return k, errors.New(hint)
	}
	return k, nil
}

// cursorParam reads the cursor parameter of a paged list: nil without
// one. A cursor that is present must be one nextCursor: an empty one is
// refused rather than taken for the first page, since a client that
// passes on the absent nextCursor of the last page would otherwise start
// over for ever.
func cursorParam(q url.Values) (*sortKey, error) {
	vs, ok := q["cursor"]
	switch {
	case !ok:
		return nil, nil
	case len(vs) > 1:
		return nil, fmt.Errorf("cursor is given %d times; give the nextCursor of the previous page once", len(vs))
	case vs[0] == "":
		return nil, errors.New("cursor is empty: leave it out for the first page; the last page has no nextCursor")
	}
	k, err := decodeCursor(vs[0])
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// noCursor answers 400 when a list that returns everything at once is
// asked for a page, and reports whether the request may go on: a client
// that believes it pages would otherwise get the whole list for every
// cursor it sends.
func noCursor(w http.ResponseWriter, r *http.Request) bool {
	if _, ok := r.URL.Query()["cursor"]; ok {
		writeErr(w, http.StatusBadRequest, fmt.Sprintf("cursor: GET %s returns its whole list in one answer and takes no cursor; only GET /v1/recipients pages", r.URL.Path))
		return false
	}
	return true
}

// keyed is a recipient with its sort key computed once.
type keyed struct {
	key sortKey
	r   events.Recipient
}

// selectRecipients returns, sorted, the first limit recipients (every
// one when limit < 0) that match f and sort after the key after, and
// whether more match. A page keeps only its limit+1 best in a max-heap
// while it scans, so a page of 50 out of 100,000 recipients neither
// copies nor sorts the other 99,950.
func (s *Server) selectRecipients(f RecipientFilter, after *sortKey, limit int) ([]keyed, bool) {
	var list []keyed
	best := &keyHeap{}
	s.proj.View(func(ps *projections.State) {
		for c, m := range ps.Recipients {
			if f.Connector != "" && c != f.Connector {
				continue
			}
			for id := range m {
				rc := m[id]
				if !f.match(rc) {
					continue
				}
				k := keyOf(rc)
				if after != nil && k.compare(*after) <= 0 {
					continue
				}
				switch {
				case limit < 0:
					list = append(list, keyed{key: k, r: rc})
				case best.Len() <= limit:
					heap.Push(best, keyed{key: k, r: rc})
				case k.compare((*best)[0].key) < 0:
					(*best)[0] = keyed{key: k, r: rc}
					heap.Fix(best, 0)
				}
			}
		}
	})
	more := false
	if limit >= 0 {
		list = *best
		more = len(list) > limit
	}
	slices.SortFunc(list, func(a, b keyed) int { return a.key.compare(b.key) })
	if more {
		list = list[:limit]
	}
	return list, more
}

// keyHeap is a max-heap of recipients by sort key: its root is the
// last of the best seen so far, the one a better recipient replaces.
type keyHeap []keyed

func (h keyHeap) Len() int           { return len(h) }
func (h keyHeap) Less(i, j int) bool { return h[i].key.compare(h[j].key) > 0 }
func (h keyHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *keyHeap) Push(x any)        { *h = append(*h, x.(keyed)) }
func (h *keyHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (s *Server) recipients(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := parseFilter(q)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	if !s.checkConnectorFilter(w, r) {
		return
	}
	limit := DefaultRecipientLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxRecipientLimit {
			writeErr(w, http.StatusBadRequest, fmt.Sprintf("limit must be a number from 1 to %d, not %q", MaxRecipientLimit, v))
			return
		}
		limit = n
	}
	after, err := cursorParam(q)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	list, more := s.selectRecipients(f, after, limit)
	page := RecipientPage{Items: make([]events.Recipient, 0, len(list))}
	for _, k := range list {
		page.Items = append(page.Items, k.r)
	}
	if more {
		page.NextCursor = encodeCursor(list[limit-1].key)
	}
	writeJSON(w, http.StatusOK, page)
}

// splitID splits "<connector>.<objectId>" (the form of
// projections.RecipientKey and of group IDs in the API).
func splitID(id string) (connector, objectID string, ok bool) {
	connector, objectID, ok = strings.Cut(id, ".")
	return connector, objectID, ok && connector != "" && objectID != ""
}

func (s *Server) recipient(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	connector, objectID, ok := splitID(id)
	if !ok {
		writeErr(w, http.StatusBadRequest, fmt.Sprintf("recipient ID %q: want <connector>.<objectId>, e.g. demo.0f3c…", id))
		return
	}
	var rc events.Recipient
	s.proj.View(func(ps *projections.State) { rc, ok = ps.Recipients[connector][objectID] })
	if !ok {
		writeErr(w, http.StatusNotFound, "no recipient with ID "+strconv.Quote(id))
		return
	}
	writeJSON(w, http.StatusOK, rc)
}

// csvHeader is the header row of the CSV export.
func csvHeader() []string {
	return []string{"id", "connector", "objectId", "email", "displayName", "givenName", "surname", "department",
		"jobTitle", "groups", "tags", "status", "updatedAt"}
}

// csvRow renders a recipient as a CSV row, every cell made safe to open
// in a spreadsheet.
func csvRow(r events.Recipient) []string {
	updated := ""
	if !r.UpdatedAt.IsZero() {
		updated = r.UpdatedAt.UTC().Format(time.RFC3339Nano)
	}
	row := []string{r.ID, r.Connector, r.ObjectID, r.Email, r.DisplayName, r.GivenName, r.Surname, r.Department,
		r.JobTitle, strings.Join(r.Groups, ";"), strings.Join(r.Tags, ";"), r.Status, updated}
	for i, c := range row {
		row[i] = csvSafe(c)
	}
	return row
}

// csvSafe neutralises spreadsheet formula injection: the values come from
// a directory that others edit, and admins open exports in Excel, which
// runs a cell starting with = + - @ (or a tab or CR before them) as a
// formula. A leading apostrophe makes such a cell text.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = FormatCSV
	}
	if format != FormatCSV && format != FormatJSON {
		writeErr(w, http.StatusBadRequest, fmt.Sprintf("format must be %s or %s, not %q", FormatCSV, FormatJSON, format))
		return
	}
	f, err := parseFilter(q)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	if !s.checkConnectorFilter(w, r) || !noCursor(w, r) {
		return
	}
	// A snapshot, taken under the read lock and written after it: a slow
	// client must not hold up the projections.
	list, _ := s.selectRecipients(f, nil, -1)
	h := w.Header()
	h.Set("Content-Disposition", `attachment; filename="recipients.`+format+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	if format == FormatCSV {
		h.Set("Content-Type", "text/csv; charset=utf-8")
		err = writeCSV(w, list)
	} else {
		h.Set("Content-Type", "application/json")
		err = writeJSONArray(w, list)
	}
	if err != nil {
		// The status line is gone: all that is left is to stop.
		s.log.Warn("recipient export interrupted", zap.String("format", format), zap.Error(err))
	}
}

// flushEvery is how many exported rows go out between flushes.
const flushEvery = 1000

func writeCSV(w http.ResponseWriter, list []keyed) error {
	rc := http.NewResponseController(w)
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader()); err != nil {
		return fmt.Errorf("writing CSV header: %w", err)
	}
	for i, k := range list {
		if err := cw.Write(csvRow(k.r)); err != nil {
			return fmt.Errorf("writing CSV row %d: %w", i+1, err)
		}
		if (i+1)%flushEvery == 0 {
			cw.Flush()
			_ = rc.Flush()
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("writing CSV: %w", err)
	}
	return nil
}

func writeJSONArray(w http.ResponseWriter, list []keyed) error {
	rc := http.NewResponseController(w)
	if _, err := w.Write([]byte("[")); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	for i, k := range list {
		b, err := json.Marshal(k.r)
		if err != nil {
			return fmt.Errorf("encoding recipient %s: %w", k.r.ID, err)
		}
		sep := ",\n"
		if i == 0 {
			sep = "\n"
		}
		if _, err := w.Write(append([]byte(sep), b...)); err != nil {
			return fmt.Errorf("writing JSON: %w", err)
		}
		if (i+1)%flushEvery == 0 {
			_ = rc.Flush()
		}
	}
	if _, err := w.Write([]byte("\n]\n")); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	return nil
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	email := strings.TrimSpace(r.URL.Query().Get("email"))
	if email == "" {
		writeErr(w, http.StatusBadRequest, "email is required")
		return
	}
	now, changes, err := s.proj.History(r.Context(), email)
	if err != nil {
		s.log.Warn("cannot read a recipient history from the event stream", zap.Error(err))
		writeErr(w, http.StatusServiceUnavailable, "cannot read the history from the event stream ("+err.Error()+"); check that NATS is reachable (dirsync status) and try again")
		return
	}
	out := History{Recipients: []events.Recipient{}, Changes: changes}
	out.Recipients = append(out.Recipients, now...)
	if len(out.Changes) == 0 {
		writeErr(w, http.StatusNotFound, "no recipient has ever had the email "+strconv.Quote(email))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// Explainer is the part of a JobRunner that says why directory users are
// or are not recipients (jobs.Runner.Explain).
type Explainer interface {
	Explain(user, connector string) ([]policy.Explanation, error)
}

// Explanations is the answer to GET /v1/recipients/explain.
type Explanations struct {
	Explanations []policy.Explanation `json:"explanations"`
}

func (s *Server) explain(w http.ResponseWriter, r *http.Request) {
	user := strings.TrimSpace(r.URL.Query().Get("user"))
	if user == "" {
		writeErr(w, http.StatusBadRequest, "user is required: an email address (any of the user's addresses) or an object ID")
		return
	}
	ex, ok := s.runner.(Explainer)
	if !ok {
		writeErr(w, http.StatusNotImplemented, "this dirsyncd cannot explain decisions")
		return
	}
	connector := r.URL.Query().Get("connector")
	out, err := ex.Explain(user, connector)
	if err != nil {
		s.fail(w, err, connector)
		return
	}
	writeJSON(w, http.StatusOK, Explanations{Explanations: out})
}
