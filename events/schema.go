package events

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// schemaFS holds one JSON Schema (draft 2020-12) per event type, named
// after the type: schemas/<type>.json. Each describes the whole CloudEvents
// envelope as stored in the stream, data included; a new data field is a
// schema change (the data objects allow no other properties).
//
//go:embed schemas/*.json
var schemaFS embed.FS

// SchemaFS returns the embedded schema files (schemas/<type>.json), for
// publishing them to downstream services.
func SchemaFS() fs.FS { return schemaFS }

// Schemas validates stored events against the schema of their type.
type Schemas struct {
	byType map[string]*jsonschema.Schema
}

// LoadSchemas compiles the embedded schemas, one per event type. Formats
// (date-time) are asserted.
func LoadSchemas() (*Schemas, error) {
	files, err := fs.Glob(schemaFS, "schemas/*.json")
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	urls := map[string]string{}
	for _, name := range files {
		b, err := schemaFS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("event schema %s: %w", name, err)
		}
		typ := strings.TrimSuffix(strings.TrimPrefix(name, "schemas/"), ".json")
		url := "https://schemas.dirsync.io/events/" + typ + ".json"
		if err := c.AddResource(url, doc); err != nil {
			return nil, fmt.Errorf("event schema %s: %w", name, err)
		}
		urls[typ] = url
	}
	s := &Schemas{byType: map[string]*jsonschema.Schema{}}
	for typ, url := range urls {
		sch, err := c.Compile(url)
		if err != nil {
			return nil, fmt.Errorf("event schema %s: %w", typ, err)
		}
		s.byType[typ] = sch
	}
	return s, nil
}

// Types lists the event types that have a schema, sorted.
func (s *Schemas) Types() []string {
	out := make([]string, 0, len(s.byType))
	for t := range s.byType {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Validate checks one stored event (a CloudEvents JSON message as written
// by Event.Marshal) against the schema of its type. An unknown type is an
// error; a violation names the type and the JSON pointer of what failed.
func (s *Schemas) Validate(raw []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("event is not JSON: %w", err)
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return errors.New("event is not a JSON object")
	}
	typ, ok := obj["type"].(string)
	if !ok {
		return errors.New("event has no string type")
	}
	sch, ok := s.byType[typ]
	if !ok {
		return fmt.Errorf("event type %q has no schema", typ)
	}
	if err := sch.Validate(doc); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return fmt.Errorf("event %s does not match its schema: %s", typ, violations(ve))
		}
		return fmt.Errorf("event %s: %w", typ, err)
	}
	return nil
}

var printer = message.NewPrinter(language.English)

// violations lists the innermost failures as "path: message", e.g.
// "/data/state: value must be one of ...".
func violations(ve *jsonschema.ValidationError) string {
	var out []string
	var walk func(e *jsonschema.ValidationError, at []string)
	walk = func(e *jsonschema.ValidationError, at []string) {
		// A propertyNames failure is located at the name, reported as
		// the root: keep the object's location instead.
		if len(e.InstanceLocation) > 0 {
			at = e.InstanceLocation
		}
		if len(e.Causes) == 0 {
			out = append(out, "/"+strings.Join(at, "/")+": "+e.ErrorKind.LocalizedString(printer))
			return
		}
		for _, c := range e.Causes {
			walk(c, at)
		}
	}
	walk(ve, nil)
	return strings.Join(out, "; ")
}

var defaultSchemas = sync.OnceValues(LoadSchemas)

// Validate checks one stored event against the schema of its type, with
// the embedded schemas compiled once on first use. See Schemas.Validate.
func Validate(raw []byte) error {
	s, err := defaultSchemas()
	if err != nil {
		return err
	}
	return s.Validate(raw)
}
