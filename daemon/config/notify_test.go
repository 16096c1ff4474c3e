package config

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNotifyBlock(t *testing.T) {
	hook := func(body string) string {
		return "notify {\n  webhook \"platform\" {\n" + body + "  }\n}\n"
	}
	const good = "    url = \"https://hooks.example.com/dirsync\"\n    secret_file = \"s\"\n"
	tests := []struct {
		name    string
		src     string
		want    Notify
		wantErr string
	}{
		{name: "no block", src: ""},
		{
			name: "a webhook",
			src:  hook(good + "    events = [\"job.failed\", \"recipient.created\", \"job.failed\"]\n"),
			want: Notify{StaleAfter: DefaultStaleAfter, Webhooks: []Webhook{{Name: "platform", URL: "https://hooks.example.com/dirsync",
				SecretFile: "DIR/s", Events: []string{"job.failed", "recipient.created"}, MaxRetryWait: DefaultMaxRetryWait}}},
		},
		{
			name: "stale_after, max_retry_wait and plain http on loopback",
			src: "notify {\n  stale_after = \"2h\"\n  webhook \"local\" {\n    url = \"http://127.0.0.1:9000/hook\"\n    secret_file = \"s\"\n" +
				"    events = [\"connector.stale\"]\n    max_retry_wait = \"30s\"\n  }\n}\n",
			want: Notify{StaleAfter: 2 * time.Hour, Webhooks: []Webhook{{Name: "local", URL: "http://127.0.0.1:9000/hook",
				SecretFile: "DIR/s", Events: []string{"connector.stale"}, MaxRetryWait: 30 * time.Second}}},
		},
		{name: "unknown kind", src: hook(good + "    events = [\"job.failed\", \"job.done\"]\n"),
			wantErr: `plugins.hcl:5:29: events item 2 of webhook platform is "job.done"; give any of job.failed, guard.tripped, connector.stale, recipient.created, recipient.archived`},
		{name: "no events", src: hook(good), wantErr: "plugins.hcl:2:3: webhook platform needs events"},
		{name: "empty events", src: hook(good + "    events = []\n"), wantErr: "plugins.hcl:5:14: events in webhook platform lists no kind"},
		{name: "no secret", src: hook("    url = \"https://h.example.com/\"\n    events = [\"job.failed\"]\n"),
			wantErr: "plugins.hcl:2:3: webhook platform needs secret_file"},
		{name: "no url", src: hook("    secret_file = \"s\"\n    events = [\"job.failed\"]\n"), wantErr: "plugins.hcl:2:3: webhook platform needs url"},
		{name: "plain http elsewhere", src: hook("    url = \"http://hooks.example.com/\"\n    secret_file = \"s\"\n    events = [\"job.failed\"]\n"),
			wantErr: "plugins.hcl:3:11: url http://hooks.example.com in webhook platform is plain http to another machine"},
		{name: "a token in the url is not quoted", src: hook("    url = \"http://hooks.example.com/services/T0/B0/sekrit-token\"\n    secret_file = \"s\"\n    events = [\"job.failed\"]\n"),
			wantErr: "url http://hooks.example.com/… in webhook platform is plain http"},
		{name: "password in url", src: hook("    url = \"https://u:p@hooks.example.com/\"\n    secret_file = \"s\"\n    events = [\"job.failed\"]\n"),
			wantErr: "must be an http(s) URL with a host and no user:password"},
		{name: "bad stale_after", src: "notify {\n  stale_after = \"5s\"\n}\n", wantErr: "plugins.hcl:2:17: stale_after \"5s\": want a duration from 1m"},
		{name: "duplicate webhook", src: "notify {\n  webhook \"a\" {\n" + good + "    events = [\"job.failed\"]\n  }\n  webhook \"a\" {\n" + good + "    events = [\"job.failed\"]\n  }\n}\n",
			wantErr: "plugins.hcl:7:11: duplicate notification name \"a\" (webhooks and emails share names); it is first declared at plugins.hcl:2:11"},
		{name: "an email", src: "notify {\n  email \"ops\" {\n    smtp = \"smtp.example.com:587\"\n    from = \"dirsync@example.com\"\n" +
			"    to = [\"ops@example.com\", \"it@example.com\"]\n    auth_file = \"a\"\n    events = [\"job.failed\", \"guard.tripped\"]\n  }\n}\n",
			want: Notify{StaleAfter: DefaultStaleAfter, Emails: []Email{{Name: "ops", SMTP: "smtp.example.com:587", From: "dirsync@example.com",
				To: []string{"ops@example.com", "it@example.com"}, AuthFile: "DIR/a", Events: []string{"job.failed", "guard.tripped"}, MaxRetryWait: DefaultMaxRetryWait}}}},
		{name: "email for recipients", src: "notify {\n  email \"ops\" {\n    smtp = \"smtp.example.com:587\"\n    from = \"d@example.com\"\n" +
			"    to = [\"ops@example.com\"]\n    events = [\"recipient.created\"]\n  }\n}\n",
			wantErr: `plugins.hcl:6:15: events item 1 of email ops is "recipient.created"; give any of job.failed, guard.tripped, connector.stale`},
		{name: "email without to", src: "notify {\n  email \"ops\" {\n    smtp = \"smtp.example.com:587\"\n    from = \"d@example.com\"\n" +
			"    events = [\"job.failed\"]\n  }\n}\n",
			wantErr: "plugins.hcl:2:3: email ops needs to, the addresses that receive the mail"},
		{name: "email smtp without port", src: "notify {\n  email \"ops\" {\n    smtp = \"smtp.example.com\"\n    from = \"d@example.com\"\n" +
			"    to = [\"ops@example.com\"]\n    events = [\"job.failed\"]\n  }\n}\n",
			wantErr: "plugins.hcl:3:12: smtp in email ops must be host:port"},
		{name: "unknown key", src: hook(good + "    events = [\"job.failed\"]\n    secret = \"x\"\n"),
			wantErr: `plugins.hcl:6:5: unknown key "secret" in webhook platform; allowed: url, secret_file, ca_file, events, max_retry_wait`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.src), "plugins.hcl")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := range tt.want.Webhooks {
				tt.want.Webhooks[i].SecretFile = strings.Replace(tt.want.Webhooks[i].SecretFile, "DIR", filepath.Clean(c.Dir), 1)
				tt.want.Webhooks[i].Range = c.Notify.Webhooks[i].Range
			}
			for i := range tt.want.Emails {
				tt.want.Emails[i].AuthFile = strings.Replace(tt.want.Emails[i].AuthFile, "DIR", filepath.Clean(c.Dir), 1)
				tt.want.Emails[i].Range = c.Notify.Emails[i].Range
			}
			if !reflect.DeepEqual(c.Notify, tt.want) {
				t.Errorf("Notify = %+v; want %+v", c.Notify, tt.want)
			}
		})
	}
}

func TestConsoleSwitch(t *testing.T) {
	for _, tt := range []struct {
		src  string
		want bool
	}{{"", false}, {"  console = false\n", true}, {"  console = true\n", false}} {
		c, err := Parse([]byte("api {\n  listen = \"127.0.0.1:1\"\n  token_file = \"t\"\n"+tt.src+"}\n"), "plugins.hcl")
		if err != nil {
			t.Fatal(err)
		}
		if c.API.NoConsole != tt.want {
			t.Errorf("%q: NoConsole = %v", tt.src, c.API.NoConsole)
		}
	}
}
