package graphsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Faults are the failures graphsim injects into Graph requests (paths
// under /v1.0; never the token, metadata or /_graphsim/ endpoints). Each
// request draws one number to choose its fate, so the rates add up: with
// ResetRate 0.1 and ThrottleRate 0.2, 10% of the requests are reset and
// another 20% throttled. The zero value injects nothing.
type Faults struct {
	// ThrottleRate is the share of Graph requests answered 429
	// TooManyRequests (with Retry-After), as Graph throttles.
	ThrottleRate float64
	// RetryAfter is the Retry-After header sent with 429 and 503 answers:
	// "" means "1"; a number of seconds such as "2" or "0.5"; "http-date"
	// sends an HTTP date one to two seconds ahead; "none" omits the header.
	RetryAfter string
	// ServerErrorRate is the share answered 503 serviceNotAvailable.
	ServerErrorRate float64
	// GatewayTimeoutRate is the share answered 504 GatewayTimeout.
	GatewayTimeoutRate float64
	// ResetRate is the share whose connection is closed (HTTP/1.1: a TCP
	// reset) or whose stream is reset (HTTP/2) without an answer.
	ResetRate float64
	// Latency is added to every Graph request before it is answered.
	Latency time.Duration
	// Down answers every Graph request 503 until cleared.
	Down bool
	// Seed makes the choice of the faulted requests deterministic: after
	// SetFaults, the n-th Graph request meets the same fate for a seed.
	Seed int64
	// BatchItemThrottleRate is the share of the sub-requests of JSON
	// batches (POST /v1.0/$batch) answered 429 inside the batch, with
	// Retry-After (see RetryAfter) among the item's headers and Graph's
	// throttling body, while the batch itself answers 200: Graph throttles
	// each request of a batch on its own
	// (https://learn.microsoft.com/graph/throttling#throttling-and-batching).
	// The choice is deterministic too: after SetFaults, the n-th
	// sub-request meets the same fate for a Seed. It is drawn apart from
	// the other rates, which decide the fate of the batch as a whole.
	BatchItemThrottleRate float64

	// The knobs below change the content of successful Graph answers
	// (200) rather than their fate, to test how a client copes with
	// hostile or broken data (see content.go). They apply to every
	// request, not to a share. Lists of object IDs are comma-separated,
	// so that Faults stays comparable.

	// OversizeBytes, when positive, pads successful Graph answers with
	// insignificant whitespace to at least this many bytes, and sends
	// them without Content-Length (streamed, as Graph sends its pages),
	// so that a client learns the size only by reading. The JSON means
	// the same as without the padding.
	OversizeBytes int64
	// NestingDepth, when positive, adds the annotation "@graphsim.nested"
	// to successful Graph answers: arrays and objects nested NestingDepth
	// levels deep, [{"n":[{"n":...}]}], before the answer's own
	// properties.
	NestingDepth int
	// BodyFaultPath limits OversizeBytes and NestingDepth to the answers
	// of one endpoint, named as Counters names it (for example
	// "/v1.0/users/delta" or "/v1.0/groups/{id}/members"); "" applies
	// them to every Graph answer.
	BodyFaultPath string
	// InvalidUTF8Users lists users (comma-separated object IDs) whose
	// displayName is served as InvalidUTF8DisplayName: bytes that are not
	// UTF-8, sent raw inside the JSON string.
	InvalidUTF8Users string
	// HostileUsers lists users (comma-separated object IDs) served with
	// the Hostile* values in displayName, givenName, surname, mail,
	// department and jobTitle: header injection with CR/LF and "Bcc:", a
	// display name in place of a mail address, bidi overrides and control
	// characters. Their userPrincipalName and id are left alone.
	HostileUsers string
	// NonGUIDIDs lists objects (comma-separated IDs of users, groups or
	// members) whose id is served as NonGUIDID(id) wherever it appears in
	// a successful answer: the object's own id, members@delta entries,
	// @removed entries and member lists.
	NonGUIDIDs string
	// MembersWithoutID lists groups (comma-separated object IDs) whose
	// members@delta, in delta answers that select members, carry one
	// more entry: {"@odata.type":"#microsoft.graph.user"}, without an id.
	MembersWithoutID string
}

// Bounds of the content faults: beyond them a test would measure
// graphsim's memory, not the client.
const (
	maxOversizeBytes = 1 << 30
	maxNestingDepth  = 10_000_000
)

// validate checks the rates and the Retry-After form.
func (f Faults) validate() error {
	var errs []error
	for _, r := range []struct {
		name string
		v    float64
	}{{"ThrottleRate", f.ThrottleRate}, {"ServerErrorRate", f.ServerErrorRate}, {"GatewayTimeoutRate", f.GatewayTimeoutRate}, {"ResetRate", f.ResetRate},
		{"BatchItemThrottleRate", f.BatchItemThrottleRate}} {
		if math.IsNaN(r.v) || r.v < 0 || r.v > 1 {
			errs = append(errs, fmt.Errorf("faults: %s must be between 0 and 1, got %v", r.name, r.v))
		}
	}
	switch ra := strings.TrimSpace(f.RetryAfter); ra {
	case "", "none", "http-date":
	default:
		if v, err := strconv.ParseFloat(ra, 64); err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("faults: RetryAfter %q is not a number of seconds, \"http-date\" or \"none\"", f.RetryAfter))
		}
	}
	if f.Latency < 0 {
		errs = append(errs, fmt.Errorf("faults: Latency must not be negative, got %s", f.Latency))
	}
	if f.OversizeBytes < 0 || f.OversizeBytes > maxOversizeBytes {
		errs = append(errs, fmt.Errorf("faults: OversizeBytes must be between 0 and %d, got %d", maxOversizeBytes, f.OversizeBytes))
	}
	if f.NestingDepth < 0 || f.NestingDepth > maxNestingDepth {
		errs = append(errs, fmt.Errorf("faults: NestingDepth must be between 0 and %d, got %d", maxNestingDepth, f.NestingDepth))
	}
	if p := f.BodyFaultPath; p != "" && p != "/v1.0" && !strings.HasPrefix(p, "/v1.0/") {
		errs = append(errs, fmt.Errorf("faults: BodyFaultPath %q is not a Graph endpoint as Counters names it, such as \"/v1.0/users/delta\"", p))
	}
	return errors.Join(errs...)
}

// faultsJSON is the JSON form of Faults (POST /_graphsim/faults), with the
// latency as a Go duration ("250ms").
type faultsJSON struct {
	ThrottleRate       float64 `json:"throttleRate"`
	RetryAfter         string  `json:"retryAfter"`
	ServerErrorRate    float64 `json:"serverErrorRate"`
	GatewayTimeoutRate float64 `json:"gatewayTimeoutRate"`
	ResetRate          float64 `json:"resetRate"`
	Latency            string  `json:"latency"`
	Down               bool    `json:"down"`
	Seed               int64   `json:"seed"`
	// The content faults are left out when unset, so that the JSON of
	// the fate faults reads as it always did.
	OversizeBytes    int64  `json:"oversizeBytes,omitempty"`
	NestingDepth     int    `json:"nestingDepth,omitempty"`
	BodyFaultPath    string `json:"bodyFaultPath,omitempty"`
	InvalidUTF8Users string `json:"invalidUtf8Users,omitempty"`
	HostileUsers     string `json:"hostileUsers,omitempty"`
	NonGUIDIDs       string `json:"nonGuidIds,omitempty"`
	MembersWithoutID string `json:"membersWithoutId,omitempty"`
	// Left out when zero, like the content faults.
	BatchItemThrottleRate float64 `json:"batchItemThrottleRate,omitempty"`
}

// MarshalJSON writes the faults with camelCase names and Latency as a
// duration string ("250ms").
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{
		ThrottleRate: f.ThrottleRate, RetryAfter: f.RetryAfter, ServerErrorRate: f.ServerErrorRate,
		GatewayTimeoutRate: f.GatewayTimeoutRate, ResetRate: f.ResetRate, Latency: f.Latency.String(), Down: f.Down, Seed: f.Seed,
		OversizeBytes: f.OversizeBytes, NestingDepth: f.NestingDepth, BodyFaultPath: f.BodyFaultPath,
		InvalidUTF8Users: f.InvalidUTF8Users, HostileUsers: f.HostileUsers, NonGUIDIDs: f.NonGUIDIDs, MembersWithoutID: f.MembersWithoutID,
		BatchItemThrottleRate: f.BatchItemThrottleRate,
	})
}

// UnmarshalJSON reads what MarshalJSON writes; latency may also be a
// number of milliseconds. Fields left out are zero.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var raw struct {
		faultsJSON
		Latency json.RawMessage `json:"latency"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	out := Faults{ThrottleRate: raw.ThrottleRate, RetryAfter: raw.RetryAfter, ServerErrorRate: raw.ServerErrorRate,
		GatewayTimeoutRate: raw.GatewayTimeoutRate, ResetRate: raw.ResetRate, Down: raw.Down, Seed: raw.Seed,
		OversizeBytes: raw.OversizeBytes, NestingDepth: raw.NestingDepth, BodyFaultPath: raw.BodyFaultPath,
		InvalidUTF8Users: raw.InvalidUTF8Users, HostileUsers: raw.HostileUsers, NonGUIDIDs: raw.NonGUIDIDs, MembersWithoutID: raw.MembersWithoutID,
		BatchItemThrottleRate: raw.BatchItemThrottleRate}
	if len(raw.Latency) > 0 && string(raw.Latency) != "null" {
		var str string
		var ms float64
		switch {
		case json.Unmarshal(raw.Latency, &str) == nil:
			if str != "" {
				d, err := time.ParseDuration(str)
				if err != nil {
					return fmt.Errorf("latency: %w", err)
				}
				out.Latency = d
			}
		case json.Unmarshal(raw.Latency, &ms) == nil:
			out.Latency = time.Duration(ms * float64(time.Millisecond))
		default:
			return fmt.Errorf("latency %s is neither a duration string nor milliseconds", raw.Latency)
		}
	}
	*f = out
	return nil
}

// SetFaults replaces the injected faults; Faults{} clears them. Rates are
// clamped to [0, 1], a negative latency counts as none and an unreadable
// RetryAfter as "1"; OversizeBytes and NestingDepth are clamped to their
// bounds and a BodyFaultPath that names no Graph endpoint matches none.
// The sequence of faulted requests restarts from f.Seed.
func (s *Sim) SetFaults(f Faults) {
	clamp := func(v float64) float64 {
		if math.IsNaN(v) || v < 0 {
			return 0
		}
		return min(v, 1)
	}
	f.ThrottleRate, f.ServerErrorRate = clamp(f.ThrottleRate), clamp(f.ServerErrorRate)
	f.GatewayTimeoutRate, f.ResetRate = clamp(f.GatewayTimeoutRate), clamp(f.ResetRate)
	f.BatchItemThrottleRate = clamp(f.BatchItemThrottleRate)
	f.Latency = max(f.Latency, 0)
	f.OversizeBytes = min(max(f.OversizeBytes, 0), maxOversizeBytes)
	f.NestingDepth = min(max(f.NestingDepth, 0), maxNestingDepth)
	f.RetryAfter = strings.TrimSpace(f.RetryAfter)
	if (Faults{RetryAfter: f.RetryAfter}).validate() != nil {
		f.RetryAfter = ""
	}
	s.faultSeq.Store(0)
	s.batchSeq.Store(0)
	s.faults.Store(&f)
}

// Faults returns the faults injected now.
func (s *Sim) Faults() Faults { return *s.faults.Load() }

// SetTokenLifetime changes the lifetime of the access tokens issued from
// now on (see Config.TokenLifetime); d <= 0 restores the default.
func (s *Sim) SetTokenLifetime(d time.Duration) {
	if d <= 0 {
		d = DefaultTokenLifetime
	}
	s.tokenLifetime.Store(int64(d))
}

// TokenLifetime is the lifetime of the access tokens issued now.
func (s *Sim) TokenLifetime() time.Duration { return time.Duration(s.tokenLifetime.Load()) }

// fault is the fate drawn for one Graph request.
type fault int

const (
	faultNone fault = iota
	faultReset
	faultThrottle
	faultUnavailable
	faultGatewayTimeout
)

// drawFault chooses the fate of the next Graph request.
func (s *Sim) drawFault(f *Faults) fault {
	if f.Down {
		return faultUnavailable
	}
	if f.ResetRate == 0 && f.ThrottleRate == 0 && f.ServerErrorRate == 0 && f.GatewayTimeoutRate == 0 {
		return faultNone
	}
	n := s.faultSeq.Add(1)
	p := prng{s: uint64(f.Seed)*0x9e3779b97f4a7c15 ^ n*0xbf58476d1ce4e5b9}
	x := float64(p.next()>>11) / (1 << 53)
	for _, c := range []struct {
		rate float64
		f    fault
	}{{f.ResetRate, faultReset}, {f.ThrottleRate, faultThrottle}, {f.ServerErrorRate, faultUnavailable}, {f.GatewayTimeoutRate, faultGatewayTimeout}} {
		if x < c.rate {
			return c.f
		}
		x -= c.rate
	}
	return faultNone
}

// drawBatchThrottle reports whether the next sub-request of a batch is
// throttled. Its sequence is apart from drawFault's, so batch items do not
// shift the fate of the requests that follow.
func (s *Sim) drawBatchThrottle(f *Faults) bool {
	if f.BatchItemThrottleRate == 0 {
		return false
	}
	n := s.batchSeq.Add(1)
	p := prng{s: uint64(f.Seed)*0xd1b54a32d192ed03 ^ n*0x9e3779b97f4a7c15}
	return float64(p.next()>>11)/(1<<53) < f.BatchItemThrottleRate
}

// injectFault applies latency and draws a fault for a Graph request. It
// reports whether the request was answered (or dropped) here.
func (s *Sim) injectFault(w http.ResponseWriter, r *http.Request) bool {
	f := s.faults.Load()
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			if rec, ok := w.(*statusRecorder); ok {
				rec.record("canceled")
			}
			return true
		}
	}
	switch s.drawFault(f) {
	case faultNone:
		return false
	case faultReset:
		s.resetConnection(w)
	case faultThrottle:
		s.setRetryAfter(w, f)
		writeThrottled(w, r, randomGUID(), s.now())
	case faultUnavailable:
		s.setRetryAfter(w, f)
		writeGraphError(w, r, randomGUID(), http.StatusServiceUnavailable, "serviceNotAvailable", "Service unavailable", s.now())
	case faultGatewayTimeout:
		writeGraphError(w, r, randomGUID(), http.StatusGatewayTimeout, "GatewayTimeout",
			"The server, while acting as a gateway or proxy, did not receive a timely response from the upstream server it needed to access in attempting to complete the request.", s.now())
	}
	return true
}

// setRetryAfter sets the Retry-After header the faults ask for.
func (s *Sim) setRetryAfter(w http.ResponseWriter, f *Faults) {
	switch f.RetryAfter {
	case "none":
	case "":
		w.Header().Set("Retry-After", "1")
	case "http-date":
		w.Header().Set("Retry-After", time.Now().Truncate(time.Second).Add(2*time.Second).UTC().Format(http.TimeFormat))
	default:
		w.Header().Set("Retry-After", f.RetryAfter)
	}
}

// writeThrottled answers 429 like graph_error_429_throttling.json.
func writeThrottled(w http.ResponseWriter, r *http.Request, rid string, now time.Time) {
	crid := r.Header.Get("client-request-id")
	if crid == "" {
		crid = rid
	}
	b := make([]byte, 0, 320)
	b = append(b, `{"error":{"code":"TooManyRequests","innerError":{"code":"429","date":`...)
	b = appendJSONString(b, now.UTC().Format("2006-01-02T15:04:05"))
	b = append(b, `,"message":"Please retry after","request-id":`...)
	b = appendJSONString(b, rid)
	b = append(b, `,"client-request-id":`...)
	b = appendJSONString(b, crid)
	b = append(b, `,"status":"429"},"message":"Please retry again later."}}`...)
	w.Header().Set("request-id", rid)
	w.Header().Set("client-request-id", crid)
	writeGraphBody(w, http.StatusTooManyRequests, b)
}

// resetConnection drops the request without an answer: on HTTP/1.1 the
// TCP connection is closed with a reset, on HTTP/2 the stream is reset.
func (s *Sim) resetConnection(w http.ResponseWriter) {
	if rec, ok := w.(*statusRecorder); ok {
		rec.record("reset")
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// HTTP/2 cannot hand over the connection: abort the stream.
		panic(http.ErrAbortHandler)
	}
	if nc, ok := conn.(interface{ NetConn() net.Conn }); ok {
		if tcp, ok := nc.NetConn().(*net.TCPConn); ok {
			_ = tcp.SetLinger(0)
		}
	}
	_ = conn.Close()
}

// Counters returns the number of requests served since the start (or
// ResetCounters), by "METHOD path status": for example
// "GET /v1.0/users/delta 200", "GET /v1.0/groups/{id}/members 429" or
// "POST /token 200". Paths are normalised: object IDs become {id},
// delta() becomes delta, the token endpoint is /token. A request dropped
// by ResetRate counts with status "reset", one whose client went away
// during Latency with "canceled". The /_graphsim/ admin endpoints are not
// counted.
func (s *Sim) Counters() map[string]int64 {
	out := map[string]int64{}
	s.counters.Range(func(k, v any) bool {
		if n := v.(*counter).n.Load(); n > 0 {
			out[k.(string)] = n
		}
		return true
	})
	return out
}

// ResetCounters sets every counter, and Requests, to zero.
func (s *Sim) ResetCounters() {
	s.counters.Range(func(_, v any) bool {
		v.(*counter).n.Store(0)
		return true
	})
	s.requests.Store(0)
}

// counter is one entry of Counters.
type counter struct{ n atomic.Int64 }

// count adds one request to its counter.
func (s *Sim) count(method, path, status string) {
	key := method + " " + path + " " + status
	v, ok := s.counters.Load(key)
	if !ok {
		v, _ = s.counters.LoadOrStore(key, &counter{})
	}
	v.(*counter).n.Add(1)
}

// endpointPath normalises a request path for Counters; "" means the
// request is not counted.
func endpointPath(path string) string {
	if path == "/_graphsim" || strings.HasPrefix(path, "/_graphsim/") {
		return ""
	}
	seg := strings.Split(strings.Trim(path, "/"), "/")
	if seg[0] == "v1.0" {
		return "/v1.0" + graphPathShape(seg[1:])
	}
	if path == "/common/discovery/instance" {
		return path
	}
	if len(seg) == 4 {
		switch strings.Join(seg[1:], "/") {
		case "oauth2/v2.0/token":
			return "/token"
		case "v2.0/.well-known/openid-configuration":
			return "/{tenant}/v2.0/.well-known/openid-configuration"
		case "discovery/v2.0/keys":
			return "/{tenant}/discovery/v2.0/keys"
		}
	}
	return "/{unknown}"
}

// graphPathShape normalises the segments after /v1.0.
func graphPathShape(seg []string) string {
	if len(seg) == 0 || len(seg) == 1 && seg[0] == "" {
		return ""
	}
	coll := strings.ToLower(seg[0])
	if coll == "$batch" && len(seg) == 1 {
		return "/$batch"
	}
	if coll != "users" && coll != "groups" {
		return "/{unknown}"
	}
	out := "/" + coll
	if len(seg) == 1 {
		return out
	}
	if isDeltaSegment(seg[1]) {
		out += "/delta"
		if len(seg) > 2 {
			out += "/{unknown}"
		}
		return out
	}
	out += "/{id}"
	rest := seg[2:]
	switch {
	case len(rest) == 0:
	case coll == "groups" && strings.EqualFold(rest[0], "members") && len(rest) == 1:
		out += "/members"
	case coll == "groups" && strings.EqualFold(rest[0], "members") && len(rest) == 2 && isUserCast(rest[1]):
		out += "/members/microsoft.graph.user"
	case coll == "groups" && strings.EqualFold(rest[0], "transitiveMembers") && len(rest) == 1:
		out += "/transitiveMembers"
	case coll == "groups" && strings.EqualFold(rest[0], "transitiveMembers") && len(rest) == 2 && isUserCast(rest[1]):
		out += "/transitiveMembers/microsoft.graph.user"
	case coll == "users" && strings.EqualFold(rest[0], "manager") && len(rest) == 1:
		out += "/manager"
	case coll == "users" && strings.EqualFold(rest[0], "mailboxSettings") && len(rest) == 1:
		out += "/mailboxSettings"
	case coll == "users" && strings.EqualFold(rest[0], "mailboxSettings") && len(rest) == 2 && strings.EqualFold(rest[1], "userPurpose"):
		out += "/mailboxSettings/userPurpose"
	default:
		out += "/{unknown}"
	}
	return out
}

func isDeltaSegment(seg string) bool {
	return strings.EqualFold(seg, "delta") || strings.EqualFold(seg, "delta()")
}

func isUserCast(seg string) bool {
	return strings.EqualFold(seg, "microsoft.graph.user") || strings.EqualFold(seg, "graph.user")
}
