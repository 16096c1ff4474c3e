package connector

import "testing"

func TestExplain(t *testing.T) {
	for _, tt := range []struct{ detail, remedy, want string }{
		{"the server refused the password", "Set bind_password.", "the server refused the password. To fix: Set bind_password."},
		{"was it restored from a backup? ", "Read everything.", "was it restored from a backup? To fix: Read everything."},
		{"done.", "Nothing.", "done. To fix: Nothing."},
		{"no remedy", "", "no remedy"},
	} {
		if got := Explain(tt.detail, tt.remedy); got != tt.want {
			t.Errorf("Explain(%q, %q) = %q; want %q", tt.detail, tt.remedy, got, tt.want)
		}
	}
}
