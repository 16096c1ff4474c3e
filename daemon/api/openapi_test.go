package api

import (
	"bytes"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/dirsync/dirsync/daemon/jobs"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

type oaParameter struct {
	Ref      string `yaml:"$ref"`
	Name     string `yaml:"name"`
	In       string `yaml:"in"`
	Required bool   `yaml:"required"`
}

type oaOperation struct {
	OperationID string `yaml:"operationId"`
	Summary     string `yaml:"summary"`
	// Security is nil when absent (the global requirement applies) and
	// points at an empty list for `security: []` (no token).
	Security   *[]map[string][]string `yaml:"security"`
	Parameters []oaParameter          `yaml:"parameters"`
	Responses  map[string]any         `yaml:"responses"`
}

type oaSchema struct {
	Type       string         `yaml:"type"`
	Required   []string       `yaml:"required"`
	Properties map[string]any `yaml:"properties"`
}

type oaDocument struct {
	OpenAPI    string                          `yaml:"openapi"`
	Security   []map[string][]string           `yaml:"security"`
	Paths      map[string]map[string]yaml.Node `yaml:"paths"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type   string `yaml:"type"`
			Scheme string `yaml:"scheme"`
		} `yaml:"securitySchemes"`
		Parameters map[string]oaParameter `yaml:"parameters"`
		Schemas    map[string]oaSchema    `yaml:"schemas"`
	} `yaml:"components"`
}

// operations returns the document's operations by "METHOD /path".
func loadOpenAPI(t *testing.T) (oaDocument, map[string]oaOperation) {
	t.Helper()
	var doc oaDocument
	if err := yaml.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	methods := []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}
	ops := map[string]oaOperation{}
	for path, item := range doc.Paths {
		for key, node := range item {
			if !slices.Contains(methods, key) {
				continue
			}
			var op oaOperation
			if err := node.Decode(&op); err != nil {
				t.Fatalf("openapi.yaml: %s %s: %v", key, path, err)
			}
			ops[strings.ToUpper(key)+" "+path] = op
		}
	}
	return doc, ops
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc, ops := loadOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi: %q, want 3.1.x", doc.OpenAPI)
	}
	var inFile, inTable []string
	for k := range ops {
		inFile = append(inFile, k)
	}
	routes := map[string]Route{}
	for _, r := range Routes() {
		k := r.Method + " " + r.Pattern
		if _, dup := routes[k]; dup {
			t.Errorf("route %s is in the table twice", k)
		}
		routes[k] = r
		inTable = append(inTable, k)
	}
	sort.Strings(inFile)
	sort.Strings(inTable)
	for _, k := range inTable {
		if _, ok := ops[k]; !ok {
			t.Errorf("route %s is not in openapi.yaml", k)
		}
	}
	for _, k := range inFile {
		if _, ok := routes[k]; !ok {
			t.Errorf("openapi.yaml documents %s, which is no route", k)
		}
	}
}

func TestOpenAPIOperations(t *testing.T) {
	doc, ops := loadOpenAPI(t)
	if s, ok := doc.Components.SecuritySchemes["bearerAuth"]; !ok || s.Type != "http" || s.Scheme != "bearer" {
		t.Errorf("securitySchemes.bearerAuth = %+v, want type http, scheme bearer", s)
	}
	if len(doc.Security) != 1 || doc.Security[0]["bearerAuth"] == nil {
		t.Errorf("global security = %v, want [{bearerAuth: []}]", doc.Security)
	}
	public := map[string]bool{}
	for _, r := range Routes() {
		public[r.Method+" "+r.Pattern] = r.Public
	}
	ids := map[string]string{}
	wildcard := regexp.MustCompile(`\{([^}]+)\}`)
	for k, op := range ops {
		if op.OperationID == "" {
			t.Errorf("%s has no operationId", k)
		} else if other, dup := ids[op.OperationID]; dup {
			t.Errorf("%s and %s share operationId %s", k, other, op.OperationID)
		}
		ids[op.OperationID] = k
		if strings.TrimSpace(op.Summary) == "" {
			t.Errorf("%s has no summary", k)
		}
		ok2xx := false
		for code := range op.Responses {
			if len(code) == 3 && code[0] == '2' {
				ok2xx = true
			}
		}
		if !ok2xx {
			t.Errorf("%s has no 2xx response", k)
		}
		switch {
		case public[k] && (op.Security == nil || len(*op.Security) != 0):
			t.Errorf("%s is public: it needs security: []", k)
		case !public[k] && op.Security != nil:
			t.Errorf("%s needs the token: it must keep the global security, not set its own", k)
		}
		if !public[k] && op.Responses["401"] == nil {
			t.Errorf("%s needs the token but documents no 401", k)
		}
		// Every {wildcard} is a required path parameter, and only those.
		_, path, _ := strings.Cut(k, " ")
		var want, got []string
		for _, m := range wildcard.FindAllStringSubmatch(path, -1) {
			want = append(want, m[1])
		}
		for _, p := range op.Parameters {
			if p.Ref != "" {
				name := strings.TrimPrefix(p.Ref, "#/components/parameters/")
				var ok bool
				if p, ok = doc.Components.Parameters[name]; !ok {
					t.Errorf("%s: parameter %s is not in components", k, name)
					continue
				}
			}
			if p.In == "path" {
				if !p.Required {
					t.Errorf("%s: path parameter %s is not required", k, p.Name)
				}
				got = append(got, p.Name)
			}
		}
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(want, got) {
			t.Errorf("%s: path parameters %v, want %v", k, got, want)
		}
	}
}

// TestOpenAPIRefsResolve checks that every $ref points at something.
func TestOpenAPIRefsResolve(t *testing.T) {
	var doc map[string]any
	if err := yaml.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	resolve := func(ref string) bool {
		var cur any = doc
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			m, ok := cur.(map[string]any)
			if !ok {
				return false
			}
			if cur, ok = m[part]; !ok {
				return false
			}
		}
		return true
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if ref, ok := x.(string); ok && k == "$ref" && (!strings.HasPrefix(ref, "#/") || !resolve(ref)) {
					t.Errorf("$ref %q does not resolve", ref)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
}

// jsonFields returns the JSON names of a struct's fields, embedded
// structs flattened, and which are always present (no omitempty).
func jsonFields(t reflect.Type) (names, always []string) {
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			n, a := jsonFields(f.Type)
			names, always = append(names, n...), append(always, a...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
			always = append(always, name)
		}
	}
	return names, always
}

// TestOpenAPISchemasMatchGoTypes keeps each schema's properties equal to
// the JSON fields of the Go type it documents, and its required list to
// the fields always present.
func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	types := map[string]any{
		"Error": Error{}, "Health": Health{}, "Status": Status{}, "ConnectorStatus": ConnectorStatus{},
		"Job": Job{}, "StateChange": projections.StateChange{}, "Progress": jobs.Progress{},
		"JobOptions": events.JobOptions{}, "SyncRequest": SyncRequest{}, "Summary": events.Summary{},
		"TestResult": TestResult{}, "Check": Check{}, "Changes": Changes{}, "Change": projections.Change{},
		"Recipient": events.Recipient{}, "RecipientPage": RecipientPage{}, "History": History{},
		"GroupView": projections.GroupView{}, "Group": Group{}, "GroupMember": GroupMember{},
	}
	inputs := map[string]bool{"SyncRequest": true} // fields optional on input
	for name, v := range types {
		s, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("schema %s is missing", name)
			continue
		}
		names, always := jsonFields(reflect.TypeOf(v))
		var props []string
		for p := range s.Properties {
			props = append(props, p)
		}
		sort.Strings(names)
		sort.Strings(props)
		if !slices.Equal(names, props) {
			t.Errorf("schema %s has properties %v; %T has JSON fields %v", name, props, v, names)
		}
		if inputs[name] {
			continue
		}
		req := slices.Clone(s.Required)
		sort.Strings(req)
		sort.Strings(always)
		if !slices.Equal(req, always) {
			t.Errorf("schema %s requires %v; %T always has %v", name, req, v, always)
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	s, _ := newTestServer(t)
	h := s.Authenticated(func() []byte { return []byte("t") })
	rec := get(t, h, "/v1/openapi.yaml")
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), OpenAPI()) || rec.Header().Get("Content-Type") != "application/yaml" {
		t.Errorf("GET /v1/openapi.yaml: %d %s, %d bytes", rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
	}
}
