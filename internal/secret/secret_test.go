package secret

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// No way of printing or encoding a Value shows it; Reveal does.
func TestValueNeverPrints(t *testing.T) {
	const pw = "hunter2-Very-Secret"
	v := struct{ Password Value }{Value(pw)}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(v), fmt.Sprintf("%v %+v %#v %s", v, v, v, v.Password), string(b)} {
		if strings.Contains(s, pw) || !strings.Contains(s, Redacted) {
			t.Errorf("%q shows the secret or no redaction", s)
		}
	}
	if v.Password.Reveal() != pw || Value("").String() != "" {
		t.Error("Reveal or the empty value")
	}
}
