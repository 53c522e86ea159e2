package migration_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/governance/migration"
	"github.com/passerelle/passerelle/internal/dbtest"
)

func TestInvitationTemplate(t *testing.T) {
	def := migration.InvitationTemplate{}
	if err := def.Validate(); err != nil {
		t.Fatal(err)
	}
	got := def.Render("Amina  B.\n", "Alice Staff", "@alice:example.org")
	if !strings.Contains(got, "Hello Amina B., this is Alice Staff.") || !strings.HasSuffix(got, "https://matrix.to/#/@alice:example.org") {
		t.Errorf("default invitation: %q", got)
	}
	own := migration.InvitationTemplate{Language: "fr", Text: "Bonjour {contact_name} ! {staff_name} vous attend sur Matrix : {join_link}", JoinLink: "https://register.example.org/join"}
	if err := own.Validate(); err != nil {
		t.Fatal(err)
	}
	if got = own.Render("", "", "@alice:example.org"); got != "Bonjour there ! alice vous attend sur Matrix : https://register.example.org/join" {
		t.Errorf("own invitation: %q", got)
	}
	for _, tc := range []struct {
		tpl  migration.InvitationTemplate
		want string
	}{
		{migration.InvitationTemplate{Text: "Hi {name}: {join_link}"}, "unknown placeholder {name}"},
		{migration.InvitationTemplate{Text: "Hi {contact_name}, join us"}, "must hold {join_link}"},
		{migration.InvitationTemplate{JoinLink: "register.example.org"}, "not an http(s) URL"},
		{migration.InvitationTemplate{JoinLink: "javascript:alert(1)"}, "not an http(s) URL"},
		{migration.InvitationTemplate{Text: strings.Repeat("x", 1001) + "{join_link}"}, "longer than"},
	} {
		if err := tc.tpl.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.tpl, err, tc.want)
		}
	}
}

func TestInvitePeriod(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		f := newFixture(t, b, testHashKey)
		ctx := context.Background()
		amina, press := f.ident("whatsapp", "whatsapp.33612345678"), f.ident("telegram", "telegram.4242")
		const period = 30 * 24 * time.Hour

		if err := f.dir.CanInvite(ctx, amina, period); err != nil {
			t.Fatalf("first invitation refused: %v", err)
		}
		head := f.head(t)
		sentAt := f.clock.Now()
		if err := f.dir.RecordInvitation(ctx, "@alice:example.org", amina, "@alice:example.org", false); err != nil {
			t.Fatal(err)
		}
		if st, _, _ := f.dir.Status(ctx, amina); st != migration.StatusInvited {
			t.Errorf("status after an invitation: %s", st)
		}
		var actions []string
		for _, e := range f.entries(t, head) {
			actions = append(actions, string(e.Action))
		}
		if strings.Join(actions, " ") != "invitation_sent migration_status" {
			t.Errorf("audit: %v", actions)
		}
		// A second one within the period says when the next is allowed.
		f.clock.Advance(29 * 24 * time.Hour)
		err := f.dir.CanInvite(ctx, amina, period)
		var recent *migration.InvitedRecentlyError
		if !errors.As(err, &recent) || !errors.Is(err, migration.ErrInvitedRecently) || !recent.Next.Equal(sentAt.Add(period)) ||
			!strings.Contains(err.Error(), sentAt.Add(period).UTC().Format("2006-01-02 15:04")) {
			t.Fatalf("second invitation within the period: %v", err)
		}
		f.clock.Advance(24 * time.Hour)
		if err = f.dir.CanInvite(ctx, amina, period); err != nil {
			t.Errorf("invitation after the period refused: %v", err)
		}
		if err = f.dir.RecordInvitation(ctx, "@admin:example.org", amina, "@bob:example.org", true); err != nil {
			t.Fatal(err)
		}
		last, err := f.dir.LastInvitation(ctx, amina)
		if err != nil || last.Count != 2 || last.Staff != "@bob:example.org" || last.SentBy != "@admin:example.org" || !last.SentAt.Equal(f.clock.Now()) {
			t.Errorf("LastInvitation = %+v, %v", last, err)
		}
		// A linked contact is not invited.
		if _, err = f.dir.Link(ctx, "@admin:example.org", migration.LinkRequest{Identity: press, MatrixID: "@press:example.org", Source: migration.SourceAdmin}); err != nil {
			t.Fatal(err)
		}
		if err = f.dir.CanInvite(ctx, press, period); !errors.Is(err, migration.ErrAlreadyOnMatrix) {
			t.Errorf("invitation of a linked contact: %v", err)
		}
		if none, err := f.dir.LastInvitation(ctx, press); none != nil || err != nil {
			t.Errorf("LastInvitation of a contact never invited = %+v, %v", none, err)
		}
	})
}

func TestPacer(t *testing.T) {
	p := migration.Pacer{PerLogin: 20 * time.Second, Global: 5 * time.Second}
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	if got := p.Next("a", t0); !got.Equal(t0) {
		t.Errorf("first send at %s", got)
	}
	p.Sent("a", t0)
	if got := p.Next("a", t0); !got.Equal(t0.Add(20 * time.Second)) {
		t.Errorf("same login next at %s", got.Sub(t0))
	}
	if got := p.Next("b", t0.Add(time.Second)); !got.Equal(t0.Add(5 * time.Second)) {
		t.Errorf("another login next at %s", got.Sub(t0))
	}
	p.Sent("b", t0.Add(5*time.Second))
	if got := p.Next("a", t0.Add(30*time.Second)); !got.Equal(t0.Add(30 * time.Second)) {
		t.Errorf("after both intervals: %s", got.Sub(t0))
	}
}
