package appservice

import (
	"testing"

	up "go.mau.fi/util/configupgrade"
	"gopkg.in/yaml.v3"
)

// The storage section's example, struct and upgrader agree: an old config's
// value is kept, a missing one takes the example's default.
func TestStorageConfigUpgrade(t *testing.T) {
	for _, tc := range []struct{ old, want string }{
		{"sqlite_synchronous: full\nobsolete: 1\n", "full"},
		{"{}\n", "normal"},
	} {
		var base, old yaml.Node
		st := newStorage()
		example, data, upgrader := st.GetConfig()
		if err := yaml.Unmarshal([]byte(example), &base); err != nil {
			t.Fatalf("example does not parse: %v", err)
		}
		if err := yaml.Unmarshal([]byte(tc.old), &old); err != nil {
			t.Fatal(err)
		}
		upgrader.DoUpgrade(up.NewHelper(&base, &old))
		out, err := yaml.Marshal(&base)
		if err != nil {
			t.Fatal(err)
		}
		if err = yaml.Unmarshal(out, data); err != nil {
			t.Fatal(err)
		}
		if st.cfg.SQLiteSynchronous != tc.want {
			t.Errorf("upgraded %q: sqlite_synchronous = %q, want %q", tc.old, st.cfg.SQLiteSynchronous, tc.want)
		}
	}
}
