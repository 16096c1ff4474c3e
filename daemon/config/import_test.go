package config

import (
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/dirsync/dirsync/connectors/connector"
)

// importFile is a file whose connector "demo" has an import block holding
// body, which starts on line 7 at column 5.
func importFile(body string) string {
	return "plugin \"a\" {\n  path = \"x\"\n}\nconnector \"demo\" {\n  plugin = \"a\"\n  import {\n    " + body + "\n  }\n}\n"
}

// parseImport parses importFile(body) and returns the connector's Import.
func parseImport(t *testing.T, body string) Import {
	t.Helper()
	c, err := Parse([]byte(importFile(body)), "plugins.hcl")
	if err != nil {
		t.Fatalf("%s:\n%v", body, err)
	}
	return c.Connectors[0].Import
}

func TestDefaultImport(t *testing.T) {
	want := Import{
		EmailFrom:        "mail",
		ExcludeMailboxes: []string{"shared", "room", "equipment"},
		NestedGroups:     true,
		GroupTypes:       []string{"unified"},
		TagMode:          "append",
		UpdateExisting:   true,
		OnRemoved:        "archive",
	}
	if got := DefaultImport(); !reflect.DeepEqual(got, want) {
		t.Errorf("DefaultImport() = %+v; want %+v", got, want)
	}
	// Each call returns its own slice.
	a := DefaultImport()
	a.GroupTypes[0] = "security"
	if DefaultImport().GroupTypes[0] != "unified" {
		t.Error("DefaultImport shares its GroupTypes slice")
	}

	src := "plugin \"a\" {\n  path = \"x\"\n}\nconnector \"demo\" {\n  plugin = \"a\"\n}\nconnector \"empty\" {\n  plugin = \"a\"\n  import {\n  }\n}\n"
	c, err := Parse([]byte(src), "plugins.hcl")
	if err != nil {
		t.Fatal(err)
	}
	for _, cn := range c.Connectors {
		got := cn.Import
		got.Range = hcl.Range{}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("connector %s: Import = %+v; want %+v", cn.Name, got, want)
		}
		if cn.Schedule != "" || cn.Timezone != "" {
			t.Errorf("connector %s: Schedule, Timezone = %q, %q; want none", cn.Name, cn.Schedule, cn.Timezone)
		}
	}
	if r := c.Connectors[0].Import.Range; r != c.Connectors[0].Range {
		t.Errorf("absent block: Import.Range = %v; want the connector's %v", r, c.Connectors[0].Range)
	}
	if r := c.Connectors[1].Import.Range; r.Start.Line != 9 || r.Start.Column != 3 || r.Filename != "plugins.hcl" {
		t.Errorf("import block: Import.Range = %v; want plugins.hcl:9:3", r)
	}
}

func TestGroupTypesMatchConnector(t *testing.T) {
	if got, want := groupTypes(), connector.GroupKinds(); !slices.Equal(got, want) {
		t.Errorf("config group types %v; connector.GroupKinds() %v", got, want)
	}
}

// A plugin's default group kinds replace the default ["unified"] only where
// the import block did not choose.
func TestWithPluginGroupKinds(t *testing.T) {
	chosen := DefaultImport()
	chosen.GroupTypes, chosen.GroupTypesSet = []string{"unified"}, true
	tests := []struct {
		name  string
		im    Import
		kinds []string
		want  []string
	}{
		{"default, plugin says security and distribution", DefaultImport(), []string{"security", "distribution"}, []string{"security", "distribution"}},
		{"default, plugin built before defaults", DefaultImport(), nil, []string{"unified"}},
		{"default, plugin names unknown kinds only", DefaultImport(), []string{"dynamic", ""}, []string{"unified"}},
		{"default, plugin repeats a kind", DefaultImport(), []string{"security", "security", "x"}, []string{"security"}},
		{"written by the admin", chosen, []string{"security", "distribution"}, []string{"unified"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.im.WithPluginGroupKinds(tt.kinds).GroupTypes; !slices.Equal(got, tt.want) {
				t.Errorf("GroupTypes = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestImportValues(t *testing.T) {
	tests := []struct {
		body string
		edit func(*Import)
	}{
		{`email_from = "mail"`, func(*Import) {}},
		{`email_from = "userPrincipalName"`, func(im *Import) { im.EmailFrom = "userPrincipalName" }},
		{`email_from = null`, func(*Import) {}},
		{`exclude_unlicensed = true`, func(im *Import) { im.ExcludeUnlicensed = true }},
		{`exclude_unlicensed = false`, func(*Import) {}},
		{`include_disabled = true`, func(im *Import) { im.IncludeDisabled = true }},
		{`include_disabled = false`, func(*Import) {}},
		{`include_guests = true`, func(im *Import) { im.IncludeGuests = true }},
		{`include_guests = false`, func(*Import) {}},
		{`group_types = ["unified"]`, func(im *Import) { im.GroupTypesSet = true }},
		{`group_types = ["security"]`, func(im *Import) { im.GroupTypes, im.GroupTypesSet = []string{"security"}, true }},
		{`group_types = ["mail_security"]`, func(im *Import) { im.GroupTypes, im.GroupTypesSet = []string{"mail_security"}, true }},
		{`group_types = ["distribution"]`, func(im *Import) { im.GroupTypes, im.GroupTypesSet = []string{"distribution"}, true }},
		{`group_types = ["distribution", "unified", "security", "mail_security"]`, func(im *Import) {
			im.GroupTypes, im.GroupTypesSet = []string{"distribution", "unified", "security", "mail_security"}, true
		}},
		{`include_groups = ["All Staff", " 0b8f0c3e-1111-2222-3333-444444444444 ", "All Staff"]`, func(im *Import) {
			im.IncludeGroups = []string{"All Staff", "0b8f0c3e-1111-2222-3333-444444444444"}
		}},
		{`include_groups = []`, func(*Import) {}},
		{`exclude_groups = ["Contractors"]`, func(im *Import) { im.ExcludeGroups = []string{"Contractors"} }},
		{`include_domains = ["Contoso.COM", "@fabrikam.co.uk", "contoso.com", "xn--bcher-kva.example"]`, func(im *Import) {
			im.IncludeDomains = []string{"contoso.com", "fabrikam.co.uk", "xn--bcher-kva.example"}
		}},
		{`exclude_domains = ["@Partner.contoso.com"]`, func(im *Import) { im.ExcludeDomains = []string{"partner.contoso.com"} }},
		{`exclude_users = ["Alice@Contoso.com", "0B8F0C3E-1111-2222-3333-444444444444", "alice@contoso.com"]`, func(im *Import) {
			im.ExcludeUsers = []string{"alice@contoso.com", "0b8f0c3e-1111-2222-3333-444444444444"}
		}},
		{`exclude_filter = { employeeType = "Resource", OfficeLocation = ["Conference*", " *room", "conference*"] }`, func(im *Import) {
			im.ExcludeFilter = map[string][]string{"employeeType": {"resource"}, "officeLocation": {"conference*", "*room"}}
		}},
		{`exclude_filter = { "extensionattribute7" = "Shared", extensionAttribute7 = ["shared", "*"] }`, func(im *Import) {
			im.ExcludeFilter = map[string][]string{"extensionAttribute7": {"shared", "*"}}
		}},
		{`exclude_filter = {}`, func(*Import) {}},
		{`exclude_filter = null`, func(*Import) {}},
		{`tags = ["vip", " azure ", "vip", "Ünïcode", "` + strings.Repeat("é", 64) + `"]`, func(im *Import) {
			im.Tags = []string{"vip", "azure", "Ünïcode", strings.Repeat("é", 64)}
		}},
		{`tags = []`, func(*Import) {}},
		{`tag_mode = "append"`, func(*Import) {}},
		{`tag_mode = "replace"`, func(im *Import) { im.TagMode = "replace" }},
		{`update_existing = true`, func(*Import) {}},
		{`update_existing = false`, func(im *Import) { im.UpdateExisting = false }},
		{`on_removed = "archive"`, func(*Import) {}},
		{`on_removed = "delete"`, func(im *Import) { im.OnRemoved = "delete" }},
		{`on_removed = "keep"`, func(im *Import) { im.OnRemoved = "keep" }},
		{`max_removals = 25`, func(im *Import) { im.MaxRemovals = Limit{Count: 25, Set: true} }},
		{`max_removals = 0`, func(im *Import) { im.MaxRemovals = Limit{Count: 0, Set: true} }},
		{`max_removals = "25"`, func(im *Import) { im.MaxRemovals = Limit{Count: 25, Set: true} }},
		{`max_removals = "10%"`, func(im *Import) { im.MaxRemovals = Limit{Percent: 10, Set: true} }},
		{`max_removals = "2.5%"`, func(im *Import) { im.MaxRemovals = Limit{Percent: 2.5, Set: true} }},
		{`max_removals = "100%"`, func(im *Import) { im.MaxRemovals = Limit{Percent: 100, Set: true} }},
		{`max_removals = null`, func(*Import) {}},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			got := parseImport(t, tt.body)
			if got.Range.Start.Line != 6 {
				t.Errorf("Range = %v; want line 6", got.Range)
			}
			got.Range = hcl.Range{}
			want := DefaultImport()
			tt.edit(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Import = %+v\nwant     %+v", got, want)
			}
		})
	}
}

func TestImportErrors(t *testing.T) {
	const in = `in import block of connector "demo"`
	tests := []struct{ body, want string }{
		// email_from: value at column 18.
		{`email_from = "upn"`, `7:18: email_from ` + in + ` must be "mail" (the default), "userPrincipalName" or "primary_smtp", got "upn"`},
		{`email_from = "Mail"`, `7:18: email_from ` + in + ` must be "mail" (the default), "userPrincipalName" or "primary_smtp", got "Mail"`},
		{`email_from = true`, `7:18: email_from ` + in + ` must be a string, got a bool`},
		// bools
		{`exclude_unlicensed = "yes"`, `7:26: exclude_unlicensed ` + in + ` must be a bool (true or false), got a string`},
		{`include_disabled = 1`, `7:24: include_disabled ` + in + ` must be a bool (true or false), got a number`},
		{`include_guests = ["true"]`, `7:22: include_guests ` + in + ` must be a bool (true or false), got a list`},
		{`update_existing = "false"`, `7:23: update_existing ` + in + ` must be a bool (true or false), got a string`},
		// group_types: value at column 19, items after it.
		{`group_types = []`, `7:19: group_types ` + in + ` is empty; list at least one of unified, security, mail_security, distribution, or remove the line for the default ["unified"]`},
		{`group_types = "unified"`, `7:19: group_types ` + in + ` must be a list of strings, e.g. ["a", "b"], got a string (write ["…"] for a single value)`},
		{`group_types = ["unified", "m365"]`, `7:31: group_types ` + in + `: unknown group type "m365"; allowed: unified, security, mail_security, distribution`},
		{`group_types = ["Unified"]`, `7:20: group_types ` + in + `: unknown group type "Unified"; allowed: unified, security, mail_security, distribution`},
		{`group_types = ["security", "unified", "security"]`, `7:43: group_types ` + in + ` lists "security" twice (items 1 and 3)`},
		{`group_types = ["unified", 2]`, `7:31: group_types ` + in + ` must be a list of strings; item 2 is a number`},
		// groups: value at column 22.
		{`include_groups = "All Staff"`, `7:22: include_groups ` + in + ` must be a list of strings, e.g. ["a", "b"], got a string (write ["…"] for a single value)`},
		{`include_groups = ["a", " "]`, `7:28: include_groups ` + in + `: item 2 is empty; give a group's display name or object ID`},
		{`exclude_groups = ["a\tb"]`, `7:23: exclude_groups ` + in + `: item 1 contains a control character; give a group's display name or object ID`},
		{`exclude_groups = [null]`, `7:23: exclude_groups ` + in + ` must be a list of strings; item 1 is null`},
		{`exclude_groups = {a = 1}`, `7:22: exclude_groups ` + in + ` must be a list of strings, e.g. ["a", "b"], got an object`},
		// domains: value at column 23.
		{`include_domains = ["contoso"]`, `7:24: include_domains ` + in + `: "contoso" is not a domain name; give one such as "contoso.com" (non-ASCII domains in their xn-- form)`},
		{`include_domains = ["ok.com", "bad domain.com"]`, `7:34: include_domains ` + in + `: "bad domain.com" is not a domain name; give one such as "contoso.com" (non-ASCII domains in their xn-- form)`},
		{`exclude_domains = ["bücher.example"]`, `7:24: exclude_domains ` + in + `: "bücher.example" is not a domain name; give one such as "contoso.com" (non-ASCII domains in their xn-- form)`},
		{`exclude_domains = ["-x.com"]`, `7:24: exclude_domains ` + in + `: "-x.com" is not a domain name; give one such as "contoso.com" (non-ASCII domains in their xn-- form)`},
		{`exclude_domains = ["user@contoso.com"]`, `7:24: exclude_domains ` + in + `: "user@contoso.com" is not a domain name; give one such as "contoso.com" (non-ASCII domains in their xn-- form)`},
		{`exclude_domains = [""]`, `7:24: exclude_domains ` + in + `: item 1 is empty; give a domain such as "contoso.com"`},
		// users: value at column 21.
		{`exclude_users = ["bob"]`, `7:22: exclude_users ` + in + `: "bob" is neither an email address nor an object ID (a GUID such as "00000000-0000-0000-0000-000000000000")`},
		{`exclude_users = ["bob@localhost"]`, `7:22: exclude_users ` + in + `: "bob@localhost" is neither an email address nor an object ID (a GUID such as "00000000-0000-0000-0000-000000000000")`},
		{`exclude_users = ["0b8f0c3e-1111-2222-3333-44444444444"]`, `7:22: exclude_users ` + in + `: "0b8f0c3e-1111-2222-3333-44444444444" is neither an email address nor an object ID (a GUID such as "00000000-0000-0000-0000-000000000000")`},
		{`exclude_users = "bob@contoso.com"`, `7:21: exclude_users ` + in + ` must be a list of strings, e.g. ["a", "b"], got a string (write ["…"] for a single value)`},
		// exclude_filter: value at column 22, its first key at 24, the
		// value of city at 31.
		{`exclude_filter = "Resource"`, `7:22: exclude_filter ` + in + ` must be an object of directory attributes and value patterns, e.g. { employeeType = "Resource", officeLocation = ["Conference*", "*Room"] }, got a string`},
		{`exclude_filter = ["Resource"]`, `7:22: exclude_filter ` + in + ` must be an object of directory attributes and value patterns, e.g. { employeeType = "Resource", officeLocation = ["Conference*", "*Room"] }, got a list`},
		{`exclude_filter = { desk = "x" }`, `7:24: exclude_filter ` + in + `: "desk" is not a directory attribute dirsync reads; give one of preferredLanguage, manager, employeeId, employeeType, companyName, officeLocation, city, country, usageLocation, mobilePhone, extensionAttribute1, extensionAttribute2, extensionAttribute3, extensionAttribute4, extensionAttribute5, extensionAttribute6, extensionAttribute7, extensionAttribute8, extensionAttribute9, extensionAttribute10, extensionAttribute11, extensionAttribute12, extensionAttribute13, extensionAttribute14, extensionAttribute15`},
		{`exclude_filter = { city = 3 }`, `7:31: exclude_filter ` + in + `: city must be a pattern (a string) or a list of patterns, got a number`},
		{`exclude_filter = { city = { a = "b" } }`, `7:31: exclude_filter ` + in + `: city must be a pattern (a string) or a list of patterns, got an object`},
		{`exclude_filter = { city = null }`, `7:31: exclude_filter ` + in + `: city must be a pattern or a list of patterns, got null`},
		{`exclude_filter = { city = ["Oslo", 3] }`, `7:40: exclude_filter ` + in + `: city must be a list of strings; item 2 is a number`},
		{`exclude_filter = { city = [] }`, `7:31: exclude_filter ` + in + `: city lists no pattern; give at least one, or remove it`},
		{`exclude_filter = { city = "" }`, `7:31: exclude_filter ` + in + `: pattern 1 of city is empty; give a value, with * for any characters, e.g. "Conference*"`},
		{`exclude_filter = { city = ["Oslo", " "] }`, `7:40: exclude_filter ` + in + `: pattern 2 of city is empty; give a value, with * for any characters, e.g. "Conference*"`},
		{`exclude_filter = { city = "a\tb" }`, `7:31: exclude_filter ` + in + `: pattern 1 of city contains a control character; give a value, with * for any characters, e.g. "Conference*"`},
		{`exclude_filter = { city = [` + strings.TrimSuffix(strings.Repeat(`"a",`, 40), ",") + `], country = [` + strings.TrimSuffix(strings.Repeat(`"b",`, 25), ",") + `] }`,
			`7:22: exclude_filter ` + in + ` holds 65 patterns; give at most 64`},
		{`exclude_filter = { city = var.city }`, `7:31: variables are not supported in plugins.hcl (found var.city); write the value itself, as a quoted string, number, bool or list`},
		// tags: value at column 12.
		{`tags = ["ok", ""]`, `7:19: tags ` + in + `: item 2 is empty; a tag has 1 to 64 characters`},
		{`tags = ["a\nb"]`, `7:13: tags ` + in + `: item 1 contains U+000A, a control, line-break or bidi character; a tag may hold none`},
		{"tags = [" + strings.TrimSuffix(strings.Repeat(`"t",`, 51), ",") + "]", `7:12: tags ` + in + ` lists 51 tags; give at most 50 (a recipient holds at most 100)`},
		{`tags = ["x\u202egpj"]`, `7:13: tags ` + in + `: item 1 contains U+202E, a control, line-break or bidi character; a tag may hold none`},
		{`tags = ["a\u200bb"]`, `7:13: tags ` + in + `: item 1 contains U+200B, an invisible or zero-width character or a space other than U+0020; a tag may hold none`},
		{`tags = ["` + strings.Repeat("x", 65) + `"]`, `7:13: tags ` + in + `: item 1 is 65 characters long; a tag has at most 64`},
		{`tags = "vip"`, `7:12: tags ` + in + ` must be a list of strings, e.g. ["a", "b"], got a string (write ["…"] for a single value)`},
		// enums
		{`tag_mode = "merge"`, `7:16: tag_mode ` + in + ` must be "append" (the default) or "replace", got "merge"`},
		{`on_removed = "disable"`, `7:18: on_removed ` + in + ` must be "archive" (the default), "delete" or "keep", got "disable"`},
		{`on_removed = 1`, `7:18: on_removed ` + in + ` must be a string, got a number`},
		// max_removals: value at column 20.
		{`max_removals = -1`, `7:20: max_removals ` + in + ` must be a count (a whole number, 0 or more, e.g. 25) or a percentage in quotes (e.g. "10%"), got -1`},
		{`max_removals = 2.5`, `7:20: max_removals ` + in + ` must be a count (a whole number, 0 or more, e.g. 25) or a percentage in quotes (e.g. "10%"), got 2.5`},
		{`max_removals = true`, `7:20: max_removals ` + in + ` must be a count (e.g. 25) or a percentage in quotes (e.g. "10%"), got a bool`},
		{`max_removals = "ten"`, `7:20: max_removals ` + in + `: "ten" is neither a count nor a percentage; use a count such as 25 or a percentage such as "10%"`},
		{`max_removals = "0%"`, `7:20: max_removals ` + in + `: percentage "0%" is out of range: it must be more than 0% and at most 100%`},
		{`max_removals = "150%"`, `7:20: max_removals ` + in + `: percentage "150%" is out of range: it must be more than 0% and at most 100%`},
		{`max_removals = "-5"`, `7:20: max_removals ` + in + `: count "-5" is negative: it must be 0 or more`},
		{`max_removals = "x%"`, `7:20: max_removals ` + in + `: "x%" is not a percentage; use a count such as 25 or a percentage such as "10%"`},
		// unknown keys, blocks, variables
		{`emailFrom = "mail"`, `7:5: unknown key "emailFrom" ` + in + `; allowed: email_from, exclude_unlicensed, include_disabled, include_guests, group_types, include_groups, exclude_groups, nested_groups, include_domains, exclude_domains, exclude_users, exclude_filter, exclude_mailboxes, tags, tag_mode, update_existing, on_removed, max_removals`},
		{"scope {\n    }", `7:5: unexpected block "scope" ` + in + `; allowed blocks: attributes`},
		// exclude_mailboxes: value at column 25.
		{`exclude_mailboxes = ["shared", "kitchen"]`, `7:36: exclude_mailboxes ` + in + `: "kitchen" is not a mailbox purpose; give any of user, shared, room, equipment, linked, others, or [] to exclude none`},
		{`exclude_mailboxes = "room"`, `7:25: exclude_mailboxes ` + in + ` must be a list of strings, e.g. ["a", "b"], got a string (write ["…"] for a single value)`},
		// attributes blocks: keys at column 7 of line 8.
		{"attributes {\n      site = \"desk\"\n    }", `8:14: site in the attributes block ` + in + `: "desk" is not a directory attribute dirsync reads; give one of preferredLanguage, manager, employeeId, employeeType, companyName, officeLocation, city, country, usageLocation, mobilePhone, extensionAttribute1, extensionAttribute2, extensionAttribute3, extensionAttribute4, extensionAttribute5, extensionAttribute6, extensionAttribute7, extensionAttribute8, extensionAttribute9, extensionAttribute10, extensionAttribute11, extensionAttribute12, extensionAttribute13, extensionAttribute14, extensionAttribute15`},
		{"attributes {\n      site = 3\n    }", `8:14: site in the attributes block ` + in + ` must be a directory attribute's name as a string, e.g. "officeLocation", got a number`},
		{"attributes {\n      _site = \"city\"\n    }", `8:7: "_site" in the attributes block ` + in + ` is not a field name: use letters, digits and _, starting with a letter, at most 64`},
		{"attributes \"x\" {\n    }", `7:16: the attributes block ` + in + ` takes no label; write attributes { site = "officeLocation" }`},
		{"attributes {\n    }\n    attributes {\n    }", `9:5: import block of connector "demo" has a second attributes block; put every mapping in one`},
		{"attributes {\n      more {\n      }\n    }", `8:7: unexpected block "more" in the attributes block ` + in + `; it takes only keys, e.g. site = "officeLocation"`},
		{`tags = [var.tag]`, `7:13: variables are not supported in plugins.hcl (found var.tag); write the value itself, as a quoted string, number, bool or list`},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			_, err := Parse([]byte(importFile(tt.body)), "plugins.hcl")
			if want := "plugins.hcl:" + tt.want; err == nil || err.Error() != want {
				t.Errorf("error:\n%v\nwant:\n%s", err, want)
			}
		})
	}
}

func TestImportBlockShape(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{
			name: "duplicate import block",
			src:  "plugin \"a\" {\n  path = \"x\"\n}\nconnector \"demo\" {\n  plugin = \"a\"\n  import {\n  }\n  import {\n  }\n}\n",
			want: `plugins.hcl:8:3: duplicate import block in connector "demo"; the first is at plugins.hcl:6:3`,
		},
		{
			name: "labelled import block",
			src:  "plugin \"a\" {\n  path = \"x\"\n}\nconnector \"demo\" {\n  plugin = \"a\"\n  import \"users\" {\n  }\n}\n",
			want: `plugins.hcl:6:10: import block takes no label`,
		},
		{
			name: "several problems in two connectors",
			src: "plugin \"a\" {\n  path = \"x\"\n}\nconnector \"one\" {\n  plugin = \"a\"\n  import {\n    tag_mode = \"x\"\n  }\n}\n" +
				"connector \"two\" {\n  plugin = \"a\"\n  import {\n    on_removed = \"x\"\n    group_types = []\n  }\n}\n",
			want: `plugins.hcl:7:16: tag_mode in import block of connector "one" must be "append" (the default) or "replace", got "x"` + "\n" +
				`plugins.hcl:13:18: on_removed in import block of connector "two" must be "archive" (the default), "delete" or "keep", got "x"` + "\n" +
				`plugins.hcl:14:19: group_types in import block of connector "two" is empty; list at least one of unified, security, mail_security, distribution, or remove the line for the default ["unified"]`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src), "plugins.hcl")
			if err == nil || err.Error() != tt.want {
				t.Errorf("error:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}

func TestImportFull(t *testing.T) {
	got := parseImport(t, `email_from         = "userPrincipalName"
    exclude_unlicensed = true
    include_disabled   = true
    include_guests     = true
    group_types        = ["unified", "security"]
    include_groups     = ["All Staff"]
    exclude_groups     = ["Contractors"]
    nested_groups      = false
    include_domains    = ["contoso.com"]
    exclude_domains    = ["partner.contoso.com"]
    exclude_users      = ["ceo@contoso.com"]
    exclude_filter     = { employeeType = "Resource", officeLocation = ["Conference*", "*Room"] }
    exclude_mailboxes  = ["Room", "shared", "room"]
    tags               = ["azure", "vip"]
    tag_mode           = "replace"
    update_existing    = false
    on_removed         = "delete"
    max_removals       = "10%"
    attributes {
      site         = "officeLocation"
      cost_center  = "ExtensionAttribute3"
      language     = "preferredLanguage"
    }`)
	got.Range = hcl.Range{}
	want := Import{
		EmailFrom:         "userPrincipalName",
		ExcludeUnlicensed: true,
		IncludeDisabled:   true,
		IncludeGuests:     true,
		GroupTypes:        []string{"unified", "security"},
		GroupTypesSet:     true,
		IncludeGroups:     []string{"All Staff"},
		ExcludeGroups:     []string{"Contractors"},
		IncludeDomains:    []string{"contoso.com"},
		ExcludeDomains:    []string{"partner.contoso.com"},
		ExcludeUsers:      []string{"ceo@contoso.com"},
		ExcludeFilter:     map[string][]string{"employeeType": {"resource"}, "officeLocation": {"conference*", "*room"}},
		ExcludeMailboxes:  []string{"room", "shared"},
		Attributes:        map[string]string{"site": "officeLocation", "cost_center": "extensionAttribute3", "language": "preferredLanguage"},
		Tags:              []string{"azure", "vip"},
		TagMode:           "replace",
		UpdateExisting:    false,
		OnRemoved:         "delete",
		MaxRemovals:       Limit{Percent: 10, Set: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Import = %+v\nwant     %+v", got, want)
	}
}

func TestParseLimit(t *testing.T) {
	good := []struct {
		in   string
		want Limit
		str  string
	}{
		{"0", Limit{Count: 0, Set: true}, "0"},
		{"25", Limit{Count: 25, Set: true}, "25"},
		{" 25 ", Limit{Count: 25, Set: true}, "25"},
		{"10%", Limit{Percent: 10, Set: true}, "10%"},
		{"10 %", Limit{Percent: 10, Set: true}, "10%"},
		{"0.5%", Limit{Percent: 0.5, Set: true}, "0.5%"},
		{"100%", Limit{Percent: 100, Set: true}, "100%"},
	}
	for _, tt := range good {
		got, err := ParseLimit(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseLimit(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
		if got.String() != tt.str {
			t.Errorf("ParseLimit(%q).String() = %q; want %q", tt.in, got.String(), tt.str)
		}
	}
	bad := map[string]string{
		"":                      `"" is neither a count nor a percentage; use a count such as 25 or a percentage such as "10%"`,
		"-":                     `"-" is neither a count nor a percentage; use a count such as 25 or a percentage such as "10%"`,
		"abc":                   `"abc" is neither a count nor a percentage; use a count such as 25 or a percentage such as "10%"`,
		"+5":                    `"+5" is neither a count nor a percentage; use a count such as 25 or a percentage such as "10%"`,
		"1e3":                   `"1e3" is neither a count nor a percentage; use a count such as 25 or a percentage such as "10%"`,
		"2.5":                   `"2.5" is neither a count nor a percentage; use a count such as 25 or a percentage such as "10%"`,
		"-5":                    `count "-5" is negative: it must be 0 or more`,
		"%":                     `"%" is not a percentage; use a count such as 25 or a percentage such as "10%"`,
		"NaN%":                  `"NaN%" is not a percentage; use a count such as 25 or a percentage such as "10%"`,
		"inf%":                  `"inf%" is not a percentage; use a count such as 25 or a percentage such as "10%"`,
		"1.2.3%":                `"1.2.3%" is not a percentage; use a count such as 25 or a percentage such as "10%"`,
		"-10%":                  `"-10%" is not a percentage; use a count such as 25 or a percentage such as "10%"`,
		"0%":                    `percentage "0%" is out of range: it must be more than 0% and at most 100%`,
		"100.5%":                `percentage "100.5%" is out of range: it must be more than 0% and at most 100%`,
		"99999999999999999999":  `count "99999999999999999999" is too large: strconv.Atoi: parsing "99999999999999999999": value out of range`,
		"99999999999999999999%": `percentage "99999999999999999999%" is out of range: it must be more than 0% and at most 100%`,
	}
	for in, want := range bad {
		got, err := ParseLimit(in)
		if err == nil || err.Error() != want {
			t.Errorf("ParseLimit(%q) = %+v, %v; want error %s", in, got, err, want)
		}
	}
}

func TestLimitString(t *testing.T) {
	for _, tt := range []struct {
		l    Limit
		want string
	}{
		{Limit{}, "default (more than 50 and more than 20%)"},
		{Limit{Count: 0, Set: true}, "0"},
		{Limit{Count: 25, Set: true}, "25"},
		{Limit{Percent: 10, Set: true}, "10%"},
		{Limit{Percent: 12.5, Set: true}, "12.5%"},
	} {
		if got := tt.l.String(); got != tt.want {
			t.Errorf("%+v.String() = %q; want %q", tt.l, got, tt.want)
		}
	}
}

func TestLimitExceeded(t *testing.T) {
	def := Limit{}
	count := Limit{Count: 25, Set: true}
	zero := Limit{Count: 0, Set: true}
	pct := Limit{Percent: 10, Set: true}
	frac := Limit{Percent: 2.5, Set: true}
	tests := []struct {
		l               Limit
		removals, total int
		want            bool
	}{
		// Default: more than 50 and more than 20%.
		{def, 0, 0, false},
		{def, 50, 100, false},
		{def, 51, 100, true},
		{def, 51, 300, false}, // 17%
		{def, 60, 250, true},  // 60 > 50 and 24% > 20%
		{def, 60, 300, false}, // exactly 20%
		{def, 61, 300, true},
		{def, 50, 50, false}, // 100%, but not more than 50
		{def, 1000, 1000, true},
		{def, 1000, 10000, false},
		// Count.
		{count, 25, 25, false},
		{count, 26, 1000, true},
		{count, 0, 0, false},
		{zero, 0, 10, false},
		{zero, 1, 1000000, true},
		// Percentage.
		{pct, 10, 100, false},
		{pct, 11, 100, true},
		{pct, 1, 5, true}, // 20%
		{pct, 0, 0, false},
		{pct, 5, 0, false}, // no recipients: nothing to compare
		{frac, 25, 1000, false},
		{frac, 26, 1000, true},
		{Limit{Percent: 100, Set: true}, 100, 100, false},
		{Limit{Percent: 100, Set: true}, math.MaxInt32, math.MaxInt32, false},
	}
	for _, tt := range tests {
		if got := tt.l.Exceeded(tt.removals, tt.total); got != tt.want {
			t.Errorf("%v: Exceeded(%d, %d) = %v; want %v", tt.l, tt.removals, tt.total, got, tt.want)
		}
	}
}
