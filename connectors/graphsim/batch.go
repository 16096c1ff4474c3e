package graphsim

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// JSON batching: POST /v1.0/$batch
// (https://learn.microsoft.com/graph/json-batching). Each request of the
// batch is served by the same handlers as a direct request, one after the
// other, and answered in {"responses":[{"id","status","headers","body"}]}
// in the order of the requests. The batch answers 200 whatever its
// requests answer.

// MaxBatchRequests is the most requests one JSON batch may hold, as in
// Graph ("up to 20", json-batching).
const MaxBatchRequests = 20

// batchRequest is one request of a batch, as a client sends it.
type batchRequest struct {
	ID      string            `json:"id"`
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	// Body and DependsOn are accepted and ignored: graphsim serves only
	// GET, and serves the requests in order anyway.
	Body      json.RawMessage `json:"body"`
	DependsOn []string        `json:"dependsOn"`
}

// batchHeaders are the headers of a sub-response that a batch answer
// carries, in the order written.
var batchHeaders = []string{"Location", "Retry-After", "Preference-Applied", "Cache-Control", "OData-Version", "Content-Type"}

// batch answers POST /v1.0/$batch.
func (g *graphReq) batch() {
	var in struct {
		Requests []batchRequest `json:"requests"`
	}
	var body io.Reader = http.MaxBytesReader(g.w, g.r.Body, 4<<20)
	// Graph's SDKs gzip request bodies (Kiota's compression handler) and
	// send them again plainly after a 415.
	switch enc := strings.ToLower(strings.TrimSpace(g.r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			g.fail(http.StatusBadRequest, "BadRequest", "Unable to read JSON request payload: the gzip body is not valid.")
			return
		}
		defer zr.Close()
		body = io.LimitReader(zr, 4<<20)
	default:
		g.fail(http.StatusUnsupportedMediaType, "UnsupportedMediaType", fmt.Sprintf("Content-Encoding '%s' is not supported.", enc))
		return
	}
	dec := json.NewDecoder(body)
	if err := dec.Decode(&in); err != nil || in.Requests == nil {
		g.fail(http.StatusBadRequest, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
		return
	}
	if len(in.Requests) > MaxBatchRequests {
		// The message Graph answers with, as quoted in
		// github.com/microsoftgraph/microsoftgraph-postman-collections/issues/9.
		g.fail(http.StatusBadRequest, "BadRequest", "Number of requests inside batch exceeds the limit.")
		return
	}
	ids := map[string]bool{}
	for i, br := range in.Requests {
		switch {
		case br.ID == "" || br.Method == "" || br.URL == "":
			g.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Invalid batch payload format: request %d lacks an id, method or url.", i))
			return
		case ids[br.ID]:
			g.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Invalid batch payload format: the id '%s' is used twice.", br.ID))
			return
		}
		ids[br.ID] = true
	}
	f := g.s.faults.Load()
	b := make([]byte, 0, 1024*len(in.Requests))
	b = append(b, `{"responses":[`...)
	for i, br := range in.Requests {
		if i > 0 {
			b = append(b, ',')
		}
		b = g.batchItem(b, br, f)
	}
	b = append(b, "]}"...)
	g.ok(b)
}

// batchItem serves one request of a batch and appends its answer to b.
// It is counted in Counters and Requests like a direct request.
func (g *graphReq) batchItem(b []byte, br batchRequest, f *Faults) []byte {
	rec := &itemRecorder{h: http.Header{}}
	method := strings.ToUpper(br.Method)
	path, sub, msg := g.subRequest(method, br)
	switch {
	case msg != "":
		writeGraphError(rec, g.r, randomGUID(), http.StatusBadRequest, "BadRequest", msg, g.now)
	case g.s.drawBatchThrottle(f):
		g.s.setRetryAfter(rec, f)
		writeThrottled(rec, sub, randomGUID(), g.now)
	default:
		g.s.serveGraph(rec, sub)
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if ep := endpointPath(path); ep != "" {
		g.s.requests.Add(1)
		g.s.count(method, ep, strconv.Itoa(rec.status))
	}
	o := jsonObj{b: b}
	o.begin()
	o.str("id", br.ID)
	o.raw("status", strconv.Itoa(rec.status))
	o.key("headers")
	h := jsonObj{b: o.b}
	h.begin()
	for _, k := range batchHeaders {
		if v := rec.h.Get(k); v != "" {
			h.str(k, v)
		}
	}
	h.end()
	o.b = h.b
	body := rec.body.Bytes()
	switch {
	case len(body) == 0:
	case json.Valid(body):
		o.raw("body", string(body))
	default:
		// Graph sends a body that is not JSON base64-encoded
		// (json-batching: "Response format").
		o.str("body", base64.StdEncoding.EncodeToString(body))
	}
	o.end()
	return o.b
}

// subRequest builds the request a batch item stands for: its URL is
// relative to /v1.0, its headers are the item's over the batch's
// Authorization. msg says why the item is refused without being served.
func (g *graphReq) subRequest(method string, br batchRequest) (path string, r *http.Request, msg string) {
	rel := strings.TrimSpace(br.URL)
	if strings.Contains(rel, "://") {
		return "", nil, "Invalid request URL: a batch request's url is relative to the version, as /users/{id}."
	}
	if !strings.HasPrefix(rel, "/") {
		rel = "/" + rel
	}
	u, err := url.Parse("/v1.0" + rel)
	if err != nil {
		return "", nil, fmt.Sprintf("Invalid request URL '%s'.", br.URL)
	}
	if strings.EqualFold(strings.Trim(strings.TrimPrefix(u.Path, "/v1.0"), "/"), "$batch") {
		return u.Path, nil, "A batch request cannot hold another batch."
	}
	r = g.r.Clone(g.r.Context())
	r.Method, r.URL, r.RequestURI, r.Body, r.ContentLength = method, u, u.RequestURI(), http.NoBody, 0
	r.Header = http.Header{}
	if a := g.r.Header.Get("Authorization"); a != "" {
		r.Header.Set("Authorization", a)
	}
	for k, v := range br.Headers {
		r.Header.Set(k, v)
	}
	return u.Path, r, ""
}

// itemRecorder collects the answer to one request of a batch.
type itemRecorder struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (r *itemRecorder) Header() http.Header { return r.h }

func (r *itemRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *itemRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
