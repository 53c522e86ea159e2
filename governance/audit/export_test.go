package audit_test

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/governance/audit"
	"github.com/passerelle/passerelle/internal/dbtest"
)

func TestExportParseEntriesRoundTrip(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		clk := newClock()
		l := audit.NewLog(openDB(t, b))
		l.Now = clk.Now
		for _, e := range []audit.Entry{
			{Actor: "@alice:example.org", Action: audit.ActionLogin, Network: "telegram", Staff: "@alice:example.org", Login: "telegram.5"},
			// Details with characters that CSV, spreadsheets and HTML escaping care about.
			{Actor: "@admin:example.org", Action: audit.ActionPolicyChanged, Details: audit.Details(map[string]any{
				"rule": `deny phone_prefix "+7"`, "note": "a, b\n<c> & =SUM(A1)",
			})},
			{Actor: audit.ActorSystem, Action: audit.ActionFirstContact, Network: "whatsapp", Contact: "=cmd|' /C calc'!A0", Portal: "whatsapp.1@g.us"},
			{Actor: audit.ActorSystem, Action: audit.ActionRequestCreated, Request: "-1", Details: []byte(" { \"held\" : 3 } ")},
		} {
			if _, err := l.Append(ctx, e); err != nil {
				t.Fatal(err)
			}
			clk.Advance(1234 * time.Millisecond)
		}
		want, err := l.List(ctx, audit.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, format := range []audit.Format{audit.FormatCSV, audit.FormatJSON} {
			var buf bytes.Buffer
			if err = l.Export(ctx, &buf, format, audit.Filter{}); err != nil {
				t.Fatal(err)
			}
			if format == audit.FormatCSV && strings.Contains(buf.String(), ",=cmd") {
				t.Errorf("CSV export has a cell a spreadsheet would run:\n%s", buf.String())
			}
			got, err := audit.ParseEntries(&buf, format)
			if err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s round trip:\n got %+v\nwant %+v", format, got, want)
			}
			if r := audit.VerifyEntries(got); !r.OK() || r.Entries != 4 {
				t.Errorf("%s export does not verify on its own: %v", format, r.Err())
			}
			got[1].Details = []byte(`{"rule":"allow everything"}`)
			if r := audit.VerifyEntries(got); r.OK() || r.Problems[0].Seq != 2 {
				t.Errorf("%s: an edited export verified: %+v", format, r)
			}
		}
		var empty bytes.Buffer
		if err = audit.WriteEntries(&empty, audit.FormatJSON, nil); err != nil {
			t.Fatal(err)
		}
		if got, err := audit.ParseEntries(&empty, audit.FormatJSON); err != nil || len(got) != 0 {
			t.Errorf("empty JSON export parsed as %v, %v", got, err)
		}
		if err = l.Export(ctx, &empty, "xml", audit.Filter{}); !errors.Is(err, audit.ErrUnknownFormat) {
			t.Errorf("xml export: %v", err)
		}
	})
}

func TestExportParseContactsRoundTrip(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		clk := newClock()
		r := newRegistry(t, openDB(t, b), nil, nil, clk)
		for _, obs := range []audit.Observation{
			{Network: "telegram", RemoteID: "telegram.111", Username: "press_office", DisplayName: "Press, \"Office\"", Staff: "@alice:example.org", Login: "telegram.a", Portal: "telegram.111", Kind: audit.KindMedia, Direction: audit.Outbound},
			{Network: "telegram", RemoteID: "telegram.222", DisplayName: "=HYPERLINK(\"http://evil\")", Kind: audit.KindSeen},
			{Network: "whatsapp", RemoteID: "whatsapp.4915112345678", Phone: "+4915112345678", DisplayName: "Jonas\nSchmidt", Staff: "@bob:example.org", Portal: "whatsapp.4915112345678", Kind: audit.KindMessage, Direction: audit.Inbound},
		} {
			record(t, r, obs)
			clk.Advance(time.Minute)
		}
		want, err := r.List(ctx, audit.ContactFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, format := range []audit.Format{audit.FormatCSV, audit.FormatJSON} {
			var buf bytes.Buffer
			if err = r.Export(ctx, &buf, format, audit.ContactFilter{}); err != nil {
				t.Fatal(err)
			}
			got, err := audit.ParseContacts(&buf, format)
			if err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s round trip:\n got %+v\nwant %+v", format, got, want)
			}
		}
	})
}

func TestParseRejectsMalformedExports(t *testing.T) {
	for _, tc := range []struct {
		name, input string
		format      audit.Format
	}{
		{"wrong header", "seq,when\n1,2\n", audit.FormatCSV},
		{"bad seq", "seq,time,actor,action,network,staff,login,portal,contact,request,details,prev_hash,hash\nx,2026-01-01T00:00:00Z,system,login,,,,,,,{},0,0\n", audit.FormatCSV},
		{"unknown field", `[{"seq":1,"colour":"red"}]`, audit.FormatJSON},
		{"not an array", `{"seq":1}`, audit.FormatJSON},
		{"export without its head", `{"entries":[]}`, audit.FormatJSON},
		{"row after the trailer", "seq,time,actor,action,network,staff,login,portal,contact,request,details,prev_hash,hash\n#head,seq=0,hash=0,anchor_seq=0,anchor_hash=0,exported_at=2026-01-01T00:00:00Z,,,,,,,\n1,2026-01-01T00:00:00Z,system,login,,,,,,,{},0,0\n", audit.FormatCSV},
		{"bad trailer", "seq,time,actor,action,network,staff,login,portal,contact,request,details,prev_hash,hash\n#head,12,,,,,,,,,,,\n", audit.FormatCSV},
	} {
		if _, err := audit.ParseEntries(strings.NewReader(tc.input), tc.format); err == nil {
			t.Errorf("%s: parsed without error", tc.name)
		}
	}
}
