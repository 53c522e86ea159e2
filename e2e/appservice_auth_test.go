package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestAppserviceRefusesForgedTransactions: anyone on the machine can reach
// the gateway's appservice port, so a transaction without the homeserver's
// hs_token must be refused and have no effect. The forged transaction carries
// a "help" command from a real user in their management room; if it were
// processed, the bot would answer there and the gateway would log it.
func TestAppserviceRefusesForgedTransactions(t *testing.T) {
	s := NewStack(t, StackOptions{Users: []string{"alice"}})
	alice := s.User("alice")
	ctx := s.Ctx()
	room, _ := s.BotRoom(alice)
	hsToken, err := s.Gateway.HSToken()
	if err != nil {
		t.Fatal(err)
	}

	forge := func(txnID, authorization string) (int, string) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"events": []map[string]any{{
			"type":             "m.room.message",
			"room_id":          room,
			"sender":           alice.UserID,
			"event_id":         "$" + txnID + ":localhost",
			"origin_server_ts": time.Now().UnixMilli(),
			"content":          map[string]any{"msgtype": "m.text", "body": "help"},
		}}})
		return putTransaction(ctx, t, s.Gateway.URL+"/_matrix/app/v1/transactions/"+txnID, authorization, body)
	}

	start := time.Now()
	forged := map[string]string{
		"forged-none":   "",
		"forged-wrong":  "Bearer " + randomString(32),
		"forged-suffix": "Bearer " + hsToken + "x",
		"forged-basic":  "Basic " + hsToken,
		// The as_token is the gateway's own secret towards the homeserver,
		// not what the homeserver presents.
		"forged-astoken": "Bearer " + asToken(t, s),
	}
	for txnID, auth := range forged {
		status, body := forge(txnID, auth)
		if status != http.StatusUnauthorized && status != http.StatusForbidden {
			t.Errorf("%s: status %d (%s), want 401 or 403", txnID, status, body)
		}
		if !strings.Contains(body, "M_MISSING_TOKEN") && !strings.Contains(body, "M_UNKNOWN_TOKEN") && !strings.Contains(body, "M_FORBIDDEN") {
			t.Errorf("%s: body %s, want a Matrix auth error code", txnID, body)
		}
	}

	// Give a wrongly accepted transaction time to show: the bot answers a
	// command in ~100-200 ms.
	time.Sleep(2 * time.Second)
	evs, err := alice.Messages(ctx, room, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Sender == s.BotID && ev.TS >= start.UnixMilli() {
			t.Errorf("the bot sent %q after the forged transactions", ev.Body())
		}
	}
	log := s.Gateway.JSONLog()
	for txnID := range forged {
		if strings.Contains(log, txnID) {
			t.Errorf("the gateway log mentions the refused transaction %s", txnID)
		}
	}

	// Control: the same request with the real token is handled, so the checks
	// above would have seen a processed transaction.
	if status, body := forge("genuine-control", "Bearer "+hsToken); status != http.StatusOK {
		t.Fatalf("control transaction with the real hs_token: status %d (%s)", status, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.Gateway.JSONLog(), "genuine-control") {
		if time.Now().After(deadline) {
			t.Fatal("the control transaction never reached the gateway's log; the log check above proves nothing")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func asToken(t *testing.T, s *Stack) string {
	t.Helper()
	doc, err := s.Gateway.Config()
	if err != nil {
		t.Fatal(err)
	}
	tok := doc.GetString("appservice.as_token")
	if tok == "" {
		t.Fatal("appservice.as_token is empty")
	}
	return tok
}

func putTransaction(ctx context.Context, t *testing.T, url, authorization string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(data)
}

// portalNotifications counts the notifications the homeserver keeps for
// one of the gateway's users (GET /notifications as the appservice) in a
// room.
func portalNotifications(ctx context.Context, t *testing.T, s *Stack, userID, roomID string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		s.Dendrite.URL+"/_matrix/client/v3/notifications?limit=1000&user_id="+url.QueryEscape(userID), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+asToken(t, s))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Notifications []struct {
			RoomID string `json:"room_id"`
		} `json:"notifications"`
	}
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		t.Fatalf("notifications of %s: HTTP %d: %s", userID, resp.StatusCode, data)
	}
	if err = json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("notifications of %s: %v", userID, err)
	}
	n := 0
	for _, notif := range body.Notifications {
		if notif.RoomID == roomID {
			n++
		}
	}
	return n
}
