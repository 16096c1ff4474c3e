package api

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"

	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// Client calls the API: over the daemon's unix socket (NewClient, no
// token: the socket's permissions guard it) or over TCP (NewHTTPClient,
// with the bearer token).
type Client struct {
	base        string // URL prefix of every request
	where       string // what error messages name: the socket or the URL
	unix        bool
	token       string
	requestedBy string
	pageSize    int // of Recipients; 0: clientPageSize
	hc          *http.Client
}

// NewClient returns a client for the daemon listening on socket.
func NewClient(socket string) *Client {
	return &Client{base: "http://dirsyncd", where: socket, unix: true, requestedBy: "cli", hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}}
}

// NewHTTPClient returns a client for the API on TCP at baseURL (e.g.
// "https://dirsync.example.com:8470"), sending token as its bearer token
// (none when token is empty). tlsConfig, when not nil, sets the TLS
// client configuration, e.g. RootCAs trusting the daemon's certificate.
func NewHTTPClient(baseURL, token string, tlsConfig *tls.Config) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if tlsConfig != nil {
		tr.TLSClientConfig = tlsConfig
	}
	base := strings.TrimRight(baseURL, "/")
	return &Client{base: base, where: base, token: token, hc: &http.Client{Transport: tr}}
}

// NewInProcessClient returns a client that calls h, the API's own
// handler (Server.ServeHTTP, no token), inside this process. The web
// console uses it: what it shows is what the API answers, filters,
// cursors and error messages included, and it re-implements none of it.
// requestedBy is the X-Dirsync-Requested-By the API records on jobs.
func NewInProcessClient(h http.Handler, requestedBy string) *Client {
	return &Client{base: "http://dirsyncd", where: "this process", requestedBy: requestedBy,
		hc: &http.Client{Transport: handlerTransport{h: h}}}
}

// handlerTransport is an http.RoundTripper that serves each request with
// a handler in this process and buffers its answer.
type handlerTransport struct{ h http.Handler }

// RoundTrip serves a copy of r (a RoundTripper must not change its
// request) as the server would hand it to a handler.
func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	in := r.Clone(r.Context())
	if in.Body == nil {
		in.Body = http.NoBody
	}
	in.RequestURI = in.URL.RequestURI()
	in.RemoteAddr = "in-process"
	rec := &bufferedResponse{header: http.Header{}}
	t.h.ServeHTTP(rec, in)
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	return &http.Response{Status: fmt.Sprintf("%d %s", rec.code, http.StatusText(rec.code)), StatusCode: rec.code,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: rec.header, Request: r,
		Body: io.NopCloser(&rec.body), ContentLength: int64(rec.body.Len())}, nil
}

// bufferedResponse is the http.ResponseWriter of handlerTransport.
type bufferedResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}

// ErrDaemonDown means nothing answers on the socket or at the URL.
var ErrDaemonDown = errors.New("dirsyncd is not running")

// send makes a request and returns the response if its status is 2xx;
// otherwise it returns the API's error message.
func (c *Client) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encoding the request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("building the request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.requestedBy != "" {
		req.Header.Set("X-Dirsync-Requested-By", c.requestedBy)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		switch {
		case c.unix && (errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)):
			return nil, fmt.Errorf("%w: nothing listens on %s; start it with `dirsyncd --config plugins.hcl` (or `make run`)", ErrDaemonDown, c.where)
		case c.unix && errors.Is(err, syscall.EACCES):
			return nil, fmt.Errorf("cannot use %s: permission denied; run dirsync as the user that runs dirsyncd", c.where)
		case errors.Is(err, syscall.ECONNREFUSED):
			return nil, fmt.Errorf("%w: nothing listens at %s (is the api block's listen set?)", ErrDaemonDown, c.where)
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET):
			// The daemon took the request and died (or was stopped)
			// before answering: it may or may not have acted on it.
			return nil, fmt.Errorf("dirsyncd closed the connection before answering %s %s (did it stop or crash? see its log); "+
				"once it runs again, `dirsync jobs` shows whether the request was taken: %w", method, path, err)
		}
		return nil, fmt.Errorf("calling dirsyncd: %w", err)
	}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct {
		Error  string `json:"error"`
		Reason string `json:"reason"` // GET /readyz
	}
	if json.Unmarshal(b, &e) == nil && (e.Error != "" || e.Reason != "") {
		return nil, errors.New(cmp.Or(e.Error, e.Reason))
	}
	return nil, fmt.Errorf("dirsyncd answered %s", resp.Status)
}

// do makes a request and decodes its JSON answer into out (unless nil).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("reading dirsyncd's answer: %w", err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decoding dirsyncd's answer: %w", err)
		}
	}
	return nil
}

// Status returns every connector's sync status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// Sync requests a sync job and returns it as PENDING.
func (c *Client) Sync(ctx context.Context, connector string, req SyncRequest) (Job, error) {
	var j Job
	return j, c.do(ctx, http.MethodPost, "/v1/connectors/"+url.PathEscape(connector)+"/sync", req, &j)
}

// Test runs a connection test.
func (c *Client) Test(ctx context.Context, connector string) (TestResult, error) {
	var t TestResult
	return t, c.do(ctx, http.MethodPost, "/v1/connectors/"+url.PathEscape(connector)+"/test", nil, &t)
}

// Job returns one job.
func (c *Client) Job(ctx context.Context, id string) (Job, error) {
	var j Job
	return j, c.do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id), nil, &j)
}

// Jobs lists jobs, newest first.
func (c *Client) Jobs(ctx context.Context, connector string, limit int) ([]Job, error) {
	q := url.Values{}
	if connector != "" {
		q.Set("connector", connector)
	}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	var list []Job
	return list, c.do(ctx, http.MethodGet, "/v1/jobs?"+q.Encode(), nil, &list)
}

// clientPageSize is the page size Recipients asks for.
const clientPageSize = 2000

// Recipients lists every recipient that matches f, sorted by email,
// following the pages of GET /v1/recipients to the last.
func (c *Client) Recipients(ctx context.Context, f RecipientFilter) ([]events.Recipient, error) {
	list := []events.Recipient{}
	cursor := ""
	for {
		page, err := c.RecipientPage(ctx, f, cmp.Or(c.pageSize, clientPageSize), cursor)
		if err != nil {
			return nil, err
		}
		list = append(list, page.Items...)
		if page.NextCursor == "" {
			return list, nil
		}
		cursor = page.NextCursor
	}
}

// RecipientPage returns one page of recipients: at most limit (0: the
// server's default) after cursor ("" for the first page).
func (c *Client) RecipientPage(ctx context.Context, f RecipientFilter, limit int, cursor string) (RecipientPage, error) {
	q := url.Values{}
	f.query(q)
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var page RecipientPage
	return page, c.do(ctx, http.MethodGet, "/v1/recipients?"+q.Encode(), nil, &page)
}

// Recipient returns one recipient by ID (<connector>.<objectId>).
func (c *Client) Recipient(ctx context.Context, id string) (events.Recipient, error) {
	var r events.Recipient
	return r, c.do(ctx, http.MethodGet, "/v1/recipients/"+url.PathEscape(id), nil, &r)
}

// Export writes every recipient that matches f to w, in format FormatCSV
// or FormatJSON, as the server streams it.
func (c *Client) Export(ctx context.Context, format string, f RecipientFilter, w io.Writer) error {
	q := url.Values{}
	f.query(q)
	q.Set("format", format)
	resp, err := c.send(ctx, http.MethodGet, "/v1/recipients/export?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("receiving the export: %w", err)
	}
	return nil
}

// Groups lists directory groups (one connector's, unless connector is
// empty), sorted by connector and display name.
func (c *Client) Groups(ctx context.Context, connector string) ([]projections.GroupView, error) {
	q := url.Values{}
	if connector != "" {
		q.Set("connector", connector)
	}
	var list []projections.GroupView
	return list, c.do(ctx, http.MethodGet, "/v1/groups?"+q.Encode(), nil, &list)
}

// Group returns a group by ID (<connector>.<groupId>) with its members.
func (c *Client) Group(ctx context.Context, id string) (Group, error) {
	var g Group
	return g, c.do(ctx, http.MethodGet, "/v1/groups/"+url.PathEscape(id), nil, &g)
}

// Ready asks GET /readyz whether the daemon is ready; the error says why
// it is not.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/readyz", nil, nil)
}

// Changes returns a job's recipient changes.
func (c *Client) Changes(ctx context.Context, id string) (Changes, error) {
	var ch Changes
	return ch, c.do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id)+"/changes", nil, &ch)
}

// Notify returns the notify block's webhooks and their deliveries.
func (c *Client) Notify(ctx context.Context) (NotifyStatus, error) {
	var n NotifyStatus
	return n, c.do(ctx, http.MethodGet, "/v1/notify", nil, &n)
}

// ChangeWindow returns at most limit of a job's changes from offset on,
// and in Total how many it has.
func (c *Client) ChangeWindow(ctx context.Context, id string, offset, limit int) (Changes, error) {
	var ch Changes
	q := url.Values{"offset": {strconv.Itoa(offset)}, "limit": {strconv.Itoa(limit)}}
	return ch, c.do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id)+"/changes?"+q.Encode(), nil, &ch)
}

// Cancel cancels a queued or running job.
func (c *Client) Cancel(ctx context.Context, id string) (Job, error) {
	var j Job
	return j, c.do(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(id)+"/cancel", nil, &j)
}

// History returns every change of the recipients that have or had an email.
// Explain asks why the directory users with object ID or address user are
// or are not recipients; connector "" asks of every connector.
func (c *Client) Explain(ctx context.Context, user, connector string) (Explanations, error) {
	q := url.Values{"user": {user}}
	if connector != "" {
		q.Set("connector", connector)
	}
	var ex Explanations
	return ex, c.do(ctx, http.MethodGet, "/v1/recipients/explain?"+q.Encode(), nil, &ex)
}

func (c *Client) History(ctx context.Context, email string) (History, error) {
	var h History
	return h, c.do(ctx, http.MethodGet, "/v1/recipients/history?"+url.Values{"email": {email}}.Encode(), nil, &h)
}
