package events

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
)

// The CloudEvents SDK path Marshal and Decode took before they encoded
// and parsed the envelope themselves: the reference they are tested and
// benchmarked against.

// sdkMarshal is the former Event.Marshal.
func sdkMarshal(e Event) ([]byte, error) {
	ce := cloudevents.New(cloudevents.CloudEventsVersionV1)
	ce.SetID(e.ID)
	ce.SetType(e.Type)
	ce.SetSource(e.Source)
	ce.SetSubject(e.Subject)
	ce.SetTime(e.Time)
	if e.JobID != "" {
		ce.SetExtension(JobExtension, e.JobID)
	}
	if e.Epoch != 0 {
		ce.SetExtension(EpochExtension, strconv.FormatUint(e.Epoch, 10))
	}
	data := []byte(e.raw)
	if data == nil {
		var err error
		if data, err = json.Marshal(e.Data); err != nil {
			return nil, fmt.Errorf("event %s %s: encoding data: %w", e.Type, e.Subject, err)
		}
	}
	// Set directly: SetData would carry raw JSON bytes as data_base64.
	ce.SetDataContentType(cloudevents.ApplicationJSON)
	ce.DataEncoded = data
	if err := ce.Validate(); err != nil {
		return nil, fmt.Errorf("event %s %s: %w", e.Type, e.Subject, err)
	}
	return json.Marshal(ce)
}

// sdkDecode is the former Decode.
func sdkDecode(b []byte) (Event, error) {
	var ce cloudevents.Event
	if err := json.Unmarshal(b, &ce); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := ce.Validate(); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if ct := ce.DataContentType(); ct != "" && !strings.HasPrefix(ct, cloudevents.ApplicationJSON) {
		return Event{}, fmt.Errorf("%w: datacontenttype %q, want application/json", ErrMalformed, ct)
	}
	e := Event{
		ID:      ce.ID(),
		Type:    ce.Type(),
		Subject: ce.Subject(),
		Source:  ce.Source(),
		Time:    ce.Time().UTC(),
		raw:     json.RawMessage(ce.Data()),
	}
	if v, ok := ce.Extensions()[JobExtension]; ok {
		e.JobID, _ = v.(string)
	}
	if v, ok := ce.Extensions()[EpochExtension].(string); ok {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return Event{}, fmt.Errorf("%w: %s: %q is not a positive decimal number", ErrMalformed, EpochExtension, v)
		}
		e.Epoch = n
	}
	return e, nil
}
