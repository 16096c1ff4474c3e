package azuread

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	abs "github.com/microsoft/kiota-abstractions-go"
	"go.uber.org/zap"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// Graph says what a mailbox is for (a person's, shared, a room, equipment)
// only in the user's mailboxSettings.userPurpose, one request per user
// (https://learn.microsoft.com/graph/api/user-get-mailboxsettings), with
// the MailboxSettings.Read application permission. The host asks only
// about users that are new or changed and that the rest of its policy
// keeps; this file asks Graph in JSON batches
// (https://learn.microsoft.com/graph/json-batching) of maxBatchItems,
// retrying each throttled request of a batch on its own.

// maxBatchItems is the most requests of one JSON batch Graph accepts.
const maxBatchItems = 20

// batchesInFlight is how many JSON batches are sent side by side: one at
// a time, a first sync of 100,000 users spent most of its classification
// waiting on round trips (BENCHMARKS.md, identity scenario), and Exchange
// throttles an app that sends many more concurrent requests (its
// documented limit is four per mailbox; each item here is another
// user's).
const batchesInFlight = 4

// batchItem is one request of a JSON batch.
type batchItem struct {
	ID     string `json:"id"`
	Method string `json:"method"`
	URL    string `json:"url"`
}

// batchAnswer is one response of a JSON batch.
type batchAnswer struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

// unavailableError is a batch answer that says the app may not read
// mailbox settings at all.
type unavailableError struct{ problem *Problem }

func (e *unavailableError) Error() string { return e.problem.Error() }

// ClassifyMailboxes implements connector.MailboxClassifier: each user's
// mailboxSettings.userPurpose, read in JSON batches. A user without an
// Exchange Online mailbox (Graph 404) is left out; without the
// MailboxSettings.Read permission the answer says so in unavailable and
// classifies no one.
func (c *Connector) ClassifyMailboxes(ctx context.Context, req *connectorv1.ClassifyMailboxesRequest) (*connectorv1.ClassifyMailboxesResponse, error) {
	if n := len(req.GetUserIds()); n > connector.MaxBatchObjects {
		return nil, fmt.Errorf("azuread: classifying mailboxes: %d users asked, at most %d per call", n, connector.MaxBatchObjects)
	}
	cfg, err := ParseConfig(req.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("azuread: classifying mailboxes: %w", err)
	}
	log := c.log.With(zap.String("job", req.GetJobId()), zap.String("tenant", cfg.Tenant))
	g, err := newGraphClient(cfg, log, c.opts)
	if err != nil {
		return nil, fmt.Errorf("azuread: classifying mailboxes: %w", err)
	}
	defer g.close()
	start := time.Now()
	resp := &connectorv1.ClassifyMailboxesResponse{Purposes: map[string]string{}}
	err = readPurposes(ctx, g, log, req.GetUserIds(), resp.Purposes)
	resp.Requests, resp.Retries, resp.ThrottleWaitMs = g.stats.requests.Load(), g.stats.retries.Load(), g.stats.throttleWaitMS.Load()
	var un *unavailableError
	switch {
	case errors.As(err, &un):
		resp.Purposes = nil
		resp.Unavailable = un.problem.Error()
		log.Warn("mailbox purposes not readable", zap.String("code", un.problem.Code))
		return resp, nil
	case err != nil:
		return nil, fmt.Errorf("azuread: classifying mailboxes: %w", err)
	}
	log.Info("mailboxes classified", zap.Int("asked", len(req.GetUserIds())), zap.Int("classified", len(resp.Purposes)),
		zap.Int64("requests", resp.Requests), zap.Int64("retries", resp.Retries), zap.Duration("took", time.Since(start)))
	return resp, nil
}

// readPurposes reads the purposes of ids into out, maxBatchItems to a
// batch, batchesInFlight batches side by side.
// A request of a batch answered 429 or 5xx goes into the next round's
// batches after the longest wait its round asked for; the waits count
// against retry_budget as the retries of a sync do.
func readPurposes(ctx context.Context, g *graphClient, log *zap.Logger, ids []string, out map[string]string) error {
	pending := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			pending = append(pending, id)
		}
	}
	attempts := map[string]int{}
	var waited time.Duration
	for len(pending) > 0 {
		var chunks [][]string
		for len(pending) > 0 && len(chunks) < batchesInFlight {
			n := min(len(pending), maxBatchItems)
			chunks, pending = append(chunks, pending[:n]), pending[n:]
		}
		rest := pending
		answers, err := sendBatches(ctx, g, chunks)
		if err != nil {
			return err
		}
		var again []string
		var wait time.Duration
		for _, a := range answers {
			retry, err := takeAnswer(a, g, out)
			switch {
			case err != nil:
				return err
			case !retry:
				continue
			}
			attempts[a.ID]++
			d, ok := parseRetryAfter(a.Headers["Retry-After"], time.Now())
			if !ok {
				d = backoff(defaultBackoffBase, attempts[a.ID], 0.5)
			}
			wait = max(wait, d)
			again = append(again, a.ID)
		}
		if len(again) == 0 {
			pending = rest
			continue
		}
		if waited+wait > g.cfg.RetryBudget {
			return &RetryBudgetError{Budget: g.cfg.RetryBudget, Attempts: attempts[again[0]] + 1, Elapsed: waited,
				Err: fmt.Errorf("graph kept throttling %d mailboxSettings requests of a batch", len(again))}
		}
		g.stats.retries.Add(int64(len(again)))
		g.stats.throttleWaitMS.Add(wait.Milliseconds())
		log.Info("mailboxSettings requests throttled in a batch; retrying them", zap.Int("requests", len(again)), zap.Duration("wait", wait))
		if err := sleepCtx(ctx, wait); err != nil {
			return err
		}
		waited += wait
		pending = append(again, rest...)
	}
	return nil
}

// sendBatches sends the chunks' batches side by side and returns all
// their answers, in the chunks' order, or the first chunk's error.
func sendBatches(ctx context.Context, g *graphClient, chunks [][]string) ([]batchAnswer, error) {
	answers := make([][]batchAnswer, len(chunks))
	errs := make([]error, len(chunks))
	var wg sync.WaitGroup
	for i, c := range chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i], errs[i] = sendBatch(ctx, g, c)
		}()
	}
	wg.Wait()
	var out []batchAnswer
	for i := range chunks {
		if errs[i] != nil {
			return nil, errs[i]
		}
		out = append(out, answers[i]...)
	}
	return out, nil
}

// sendBatch POSTs one JSON batch asking the mailbox purpose of each of
// ids and returns its answers, one per id.
func sendBatch(ctx context.Context, g *graphClient, ids []string) ([]batchAnswer, error) {
	items := make([]batchItem, len(ids))
	for i, id := range ids {
		items[i] = batchItem{ID: id, Method: http.MethodGet, URL: "/users/" + url.PathEscape(id) + "/mailboxSettings?$select=userPurpose"}
	}
	body, err := json.Marshal(map[string][]batchItem{"requests": items})
	if err != nil {
		return nil, err
	}
	ri, err := newRequest(abs.POST, strings.TrimSuffix(g.cfg.GraphURL, "/")+"/$batch")
	if err != nil {
		return nil, err
	}
	ri.SetStreamContentAndContentType(body, "application/json")
	raw, err := g.send(ctx, ri, true)
	if err != nil {
		return nil, explain(err, stageMailboxes, g.cfg, g.secret)
	}
	var doc struct {
		Responses []batchAnswer `json:"responses"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("reading Graph's answer to a JSON batch: %w", err)
	}
	asked := make(map[string]bool, len(ids))
	for _, id := range ids {
		asked[id] = true
	}
	for _, a := range doc.Responses {
		if !asked[a.ID] {
			return nil, fmt.Errorf("the answer to a JSON batch has a response with id %q, which was not asked", a.ID)
		}
		delete(asked, a.ID)
	}
	if len(asked) > 0 {
		return nil, fmt.Errorf("the answer to a JSON batch of %d requests lacks %d of them", len(ids), len(asked))
	}
	return doc.Responses, nil
}

// takeAnswer records one batch answer in out. retry is true when the
// request should be sent again (throttled, or Graph briefly unable).
func takeAnswer(a batchAnswer, g *graphClient, out map[string]string) (retry bool, err error) {
	switch {
	case a.Status == http.StatusOK:
		var v struct {
			UserPurpose string `json:"userPurpose"`
		}
		if err := json.Unmarshal(a.Body, &v); err != nil {
			return false, fmt.Errorf("reading the mailbox settings of user %s: %w", a.ID, err)
		}
		out[a.ID] = purpose(v.UserPurpose)
		return false, nil
	case a.Status == http.StatusNotFound:
		// No Exchange Online mailbox (MailboxNotEnabledForRESTAPI: none, a
		// guest, one on-premises) or no such user any more: nothing to say.
		return false, nil
	case a.Status == http.StatusTooManyRequests, a.Status == http.StatusServiceUnavailable,
		a.Status == http.StatusBadGateway, a.Status == http.StatusGatewayTimeout:
		return true, nil
	}
	ge := batchError(a)
	p := explain(ge, stageMailboxes, g.cfg, g.secret)
	if a.Status == http.StatusForbidden {
		return false, &unavailableError{problem: p}
	}
	return false, fmt.Errorf("reading the mailbox settings of user %s: %w", a.ID, p)
}

// batchError is the Graph error a batch answer carries in its body.
func batchError(a batchAnswer) *GraphError {
	ge := &GraphError{Status: a.Status, RequestID: a.Headers["request-id"]}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(a.Body, &body) == nil {
		ge.Code, ge.Message = body.Error.Code, body.Error.Message
	}
	if ge.Code == "" && ge.Message == "" {
		ge.Message = "status " + strconv.Itoa(a.Status) + " without an error body"
	}
	return ge
}

// purpose maps Graph's userPurpose to connector.MailboxPurposes: a value
// Graph adds later (unknownFutureValue and beyond) is "others".
func purpose(v string) string {
	for _, p := range connector.MailboxPurposes() {
		if strings.EqualFold(p, v) {
			return p
		}
	}
	return connector.MailboxOthers
}
