package config

import (
	"strings"
	"testing"
)

func TestNATSStorage(t *testing.T) {
	tests := []struct {
		name, src string
		want      NATS
		err       string
	}{
		{name: "defaults", src: "nats {\n}\n",
			want: NATS{Listen: DefaultListen, Replicas: 1}},
		{name: "always and a limit", src: "nats {\n  sync      = \"always\"\n  max_store = \"64MB\"\n}\n",
			want: NATS{Listen: DefaultListen, Replicas: 1, Sync: "always", MaxStore: 64 << 20}},
		{name: "interval, GiB with a space", src: "nats {\n  sync      = \"interval\"\n  max_store = \"1.5 GiB\"\n}\n",
			want: NATS{Listen: DefaultListen, Replicas: 1, Sync: "interval", MaxStore: 3 << 29}},
		{name: "bytes", src: "nats {\n  max_store = \"16777216\"\n}\n",
			want: NATS{Listen: DefaultListen, Replicas: 1, MaxStore: 16 << 20}},
		{name: "unknown policy", src: "nats {\n  sync = \"never\"\n}\n",
			err: `FILE:2:10: sync in nats block must be "append" (the default), "always" or "interval", got "never"`},
		{name: "unknown unit", src: "nats {\n  max_store = \"64 furlongs\"\n}\n",
			err: `FILE:2:15: max_store "64 furlongs": unknown unit " furlongs" (use B, KB, MB, GB or TB); write a size such as "512MB" or "20GB" (units of 1024, as nats-server's max_file_store)`},
		{name: "not a number", src: "nats {\n  max_store = \"MB\"\n}\n",
			err: `FILE:2:15: max_store "MB": "" is not a positive number; write a size such as "512MB" or "20GB" (units of 1024, as nats-server's max_file_store)`},
		{name: "too small", src: "nats {\n  max_store = \"1MB\"\n}\n",
			err: `FILE:2:15: max_store "1MB" is below the minimum of 16MB: JetStream needs room for the event stream, the read models and a job's final state`},
		{name: "number instead of a string", src: "nats {\n  max_store = 64\n}\n",
			err: `FILE:2:15: max_store in nats block must be a string, got a number`},
		{name: "external server", src: "nats {\n  url       = \"nats://x:4222\"\n  sync      = \"append\"\n  max_store = \"1GB\"\n}\n",
			err: `FILE:3:3: sync applies only to the embedded server; an existing NATS deployment has its own (jetstream { sync_interval, max_file_store } in its configuration): remove it` + "\n" +
				`FILE:4:3: max_store applies only to the embedded server; an existing NATS deployment has its own (jetstream { sync_interval, max_file_store } in its configuration): remove it`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := write(t, t.TempDir(), tt.src)
			c, err := Load(path)
			if tt.err != "" {
				want := strings.ReplaceAll(tt.err, "FILE", path)
				if err == nil || err.Error() != want {
					t.Fatalf("error:\n%v\nwant:\n%s", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.NATS != tt.want {
				t.Errorf("NATS = %+v; want %+v", c.NATS, tt.want)
			}
		})
	}
}
