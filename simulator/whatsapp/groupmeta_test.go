package wasim_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// The control API drives a group's settings and members and reads them
// back; only admins change a locked or announce-only group, and an
// announce-only group refuses a member's message.
func TestControlGroupChanges(t *testing.T) {
	srv := startServer(t)
	for _, p := range []string{"15550040001", "15550040002", "15550040003"} {
		if _, err := srv.CreateAccount(p, p); err != nil {
			t.Fatal(err)
		}
	}
	hs := httptest.NewServer(srv.ControlHandler())
	t.Cleanup(hs.Close)
	post := func(path string, body any) int {
		t.Helper()
		raw, _ := json.Marshal(body)
		resp, err := http.Post(hs.URL+path, "application/json", bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	gid, err := srv.CreateGroup(t.Context(), "15550040001", "Team", "", []string{"15550040002"})
	if err != nil {
		t.Fatal(err)
	}
	if code := post("/groups/announce", map[string]any{"actor": "15550040002", "group": gid, "on": true}); code < 400 {
		t.Fatalf("a member made the group announce-only: %d", code)
	}
	for path, body := range map[string]map[string]any{
		"/groups/announce":     {"actor": "15550040001", "group": gid, "on": true},
		"/groups/locked":       {"actor": "15550040001", "group": gid, "on": true},
		"/groups/subject":      {"actor": "15550040001", "group": gid, "name": "Renamed"},
		"/groups/participants": {"actor": "15550040001", "group": gid, "action": "add", "members": []string{"15550040003"}},
	} {
		if code := post(path, body); code >= 300 {
			t.Fatalf("%s: %d", path, code)
		}
	}
	if code := post("/groups/participants", map[string]any{"actor": "15550040001", "group": gid, "action": "promote", "members": []string{"15550040003"}}); code >= 300 {
		t.Fatalf("promote: %d", code)
	}
	if code := post("/groups/subject", map[string]any{"actor": "15550040002", "group": gid, "name": "Mine"}); code < 400 {
		t.Fatalf("a member renamed a locked group: %d", code)
	}
	if _, err = srv.SendGroupText(t.Context(), "15550040002", gid, "may I?", nil); err == nil {
		t.Fatal("a member posted to an announce-only group")
	}
	if _, err = srv.SendGroupText(t.Context(), "15550040003", gid, "as an admin", nil); err != nil {
		t.Fatalf("an admin could not post: %v", err)
	}
	resp, err := http.Get(hs.URL + "/groups/" + gid)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var g struct {
		Name             string
		Members, Admins  []string
		Announce, Locked bool
	}
	if err = json.NewDecoder(resp.Body).Decode(&g); err != nil {
		t.Fatal(err)
	}
	if g.Name != "Renamed" || !g.Announce || !g.Locked || !slices.Contains(g.Members, "15550040003") || !slices.Equal(g.Admins, []string{"15550040003"}) {
		t.Fatalf("group read back: %+v", g)
	}
	if code := post("/groups/remove", map[string]any{"actor": "15550040002", "group": gid, "members": []string{"15550040002"}}); code >= 300 {
		t.Fatalf("leave: %d", code)
	}
	if info, _ := srv.GroupInfo(gid); slices.Contains(info.Members, "15550040002") {
		t.Fatal("a member who left is still in the group")
	}
}
