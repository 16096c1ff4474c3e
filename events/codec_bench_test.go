package events

import (
	"testing"
)

// The codec benchmarks compare the SDK path (sdkMarshal, sdkDecode) with
// Marshal and Decode on the two events a full sync writes most of.
var benchEvents = []struct{ name, sample string }{
	{"recipient", "recipient_created"},
	{"user", "user_changed"},
}

func BenchmarkMarshal(b *testing.B) {
	for _, be := range benchEvents {
		e := samples()[be.sample]
		b.Run(be.name+"/sdk", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := sdkMarshal(e); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(be.name+"/new", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Marshal(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(be.name+"/append", func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				var err error
				if buf, err = e.AppendMarshal(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, be := range benchEvents {
		msg, err := samples()[be.sample].Marshal()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(be.name+"/sdk", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if _, err := sdkDecode(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(be.name+"/new", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if _, err := Decode(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeData is what a projection pays per event: the envelope
// and then the data.
func BenchmarkDecodeData(b *testing.B) {
	for _, be := range benchEvents {
		msg, err := samples()[be.sample].Marshal()
		if err != nil {
			b.Fatal(err)
		}
		decodeData := func(e Event) error {
			if be.name == "user" {
				var u User
				return e.DecodeData(&u)
			}
			var rc RecipientChange
			return e.DecodeData(&rc)
		}
		for _, dec := range []struct {
			name   string
			decode func([]byte) (Event, error)
		}{{"sdk", sdkDecode}, {"new", Decode}} {
			b.Run(be.name+"/"+dec.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					e, err := dec.decode(msg)
					if err != nil {
						b.Fatal(err)
					}
					if err := decodeData(e); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
