package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"

	"github.com/dirsync/dirsync/events"
)

// Client calls the API over the daemon's unix socket.
type Client struct {
	socket string
	hc     *http.Client
}

// NewClient returns a client for the daemon listening on socket.
func NewClient(socket string) *Client {
	return &Client{socket: socket, hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}}
}

// ErrDaemonDown means nothing answers on the socket.
var ErrDaemonDown = errors.New("dirsyncd is not running")

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://dirsyncd"+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Dirsync-Requested-By", "cli")
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w: nothing listens on %s; start it with `dirsyncd --config plugins.hcl` (or `make run`)", ErrDaemonDown, c.socket)
		}
		if errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("cannot use %s: permission denied; run dirsync as the user that runs dirsyncd", c.socket)
		}
		return fmt.Errorf("calling dirsyncd: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("reading dirsyncd's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e Error
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("dirsyncd answered %s", resp.Status)
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

// Recipients lists recipients, sorted by email.
func (c *Client) Recipients(ctx context.Context, f RecipientFilter) ([]events.Recipient, error) {
	q := url.Values{}
	for k, v := range map[string]string{"connector": f.Connector, "status": f.Status, "tag": f.Tag, "group": f.Group} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var list []events.Recipient
	return list, c.do(ctx, http.MethodGet, "/v1/recipients?"+q.Encode(), nil, &list)
}

// Changes returns a job's recipient changes.
func (c *Client) Changes(ctx context.Context, id string) (Changes, error) {
	var ch Changes
	return ch, c.do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id)+"/changes", nil, &ch)
}

// Cancel cancels a queued or running job.
func (c *Client) Cancel(ctx context.Context, id string) (Job, error) {
	var j Job
	return j, c.do(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(id)+"/cancel", nil, &j)
}

// RecipientFilter narrows a recipient list.
type RecipientFilter struct {
	Connector, Status, Tag, Group string
}

// History returns every change of the recipients that have or had an email.
func (c *Client) History(ctx context.Context, email string) (History, error) {
	var h History
	return h, c.do(ctx, http.MethodGet, "/v1/recipients/history?"+url.Values{"email": {email}}.Encode(), nil, &h)
}
