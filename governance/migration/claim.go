package migration

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"maunium.net/go/mautrix/id"
)

// DefaultClaimTTL is how long a claim code is valid when ClaimTTL is 0.
const DefaultClaimTTL = time.Hour

// A claim code is ClaimCodeLength characters of claimAlphabet (no 0/O,
// 1/I/L, so that it can be read aloud and typed on a phone), shown as two
// groups of five: 50 random bits. It is single-use and expires, and only
// its hash is stored.
const (
	ClaimCodeLength = 10
	claimAlphabet   = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
)

// claimPrefix starts every code, so that a contact's ordinary message is
// never mistaken for one.
const claimPrefix = "MX-"

// ErrClaimRefused is returned by IssueClaim for a user who may not claim.
var ErrClaimRefused = errors.New("claim refused")

// IssueClaim makes a new claim code for the Matrix user userID, whose
// confirmation goes to roomID (their DM with the bot). Any earlier code of
// the user is void, and so is every expired code. The code is returned
// once, never stored or logged; the audit entry says only that one was
// issued and until when.
func (d *Directory) IssueClaim(ctx context.Context, userID id.UserID, roomID id.RoomID) (code string, expires time.Time, err error) {
	if _, err = ValidateMatrixID(string(userID)); err != nil {
		return "", time.Time{}, err
	}
	raw := make([]byte, ClaimCodeLength)
	if _, err = rand.Read(raw); err != nil {
		return "", time.Time{}, fmt.Errorf("failed to make claim code: %w", err)
	}
	var b strings.Builder
	b.WriteString(claimPrefix)
	for i, c := range raw {
		if i == ClaimCodeLength/2 {
			b.WriteByte('-')
		}
		// 256 is not a multiple of 31: a slight bias, of no use to a
		// guesser against 31^10 codes that expire.
		b.WriteByte(claimAlphabet[int(c)%len(claimAlphabet)])
	}
	code = b.String()
	now := d.now()
	ttl := d.ClaimTTL
	if ttl <= 0 {
		ttl = DefaultClaimTTL
	}
	expires = now.Add(ttl)
	err = d.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		if _, err := d.db.Exec(ctx, `DELETE FROM governance_claim_code WHERE matrix_id = $1 OR expires_at <= $2`, string(userID), now.UnixMilli()); err != nil {
			return fmt.Errorf("failed to void old claim codes: %w", err)
		}
		if _, err := d.db.Exec(ctx, `INSERT INTO governance_claim_code (code_hash, matrix_id, room_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
			d.claimHash(normalizeClaim(code)), string(userID), string(roomID), now.UnixMilli(), expires.UnixMilli()); err != nil {
			return fmt.Errorf("failed to store claim code: %w", err)
		}
		return d.audit(ctx, string(userID), ActionClaimIssued, Identity{}, map[string]any{"expires_at": expires.UTC().Format(time.RFC3339)})
	})
	if err != nil {
		return "", time.Time{}, err
	}
	return code, expires, nil
}

// normalizeClaim returns the canonical form of what may be a claim code
// ("mx-abcde-fghjk", "MX ABCDE FGHJK", with spaces around), or "" when text
// is not one.
func normalizeClaim(text string) string {
	text = strings.TrimSpace(text)
	if len(text) > 32 {
		return ""
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(text) {
		switch {
		case r == '-' || r == ' ':
		case r < 128 && strings.ContainsRune(claimAlphabet, r) || r == 'X':
			b.WriteRune(r)
		default:
			return ""
		}
	}
	s := b.String()
	rest, ok := strings.CutPrefix(s, "MX")
	if !ok || len(rest) != ClaimCodeLength {
		return ""
	}
	for _, r := range rest {
		if !strings.ContainsRune(claimAlphabet, r) {
			return ""
		}
	}
	return rest
}

// LooksLikeClaim reports whether text has the form of a claim code: the
// gate looks a code up only then.
func LooksLikeClaim(text string) bool { return normalizeClaim(text) != "" }

func (d *Directory) claimHash(norm string) string {
	if d.seal.On() {
		return d.seal.Pseudonym("claim_code", norm)
	}
	mac := hmac.New(sha256.New, []byte("passerelle-claim-code"))
	mac.Write([]byte(norm))
	return hex.EncodeToString(mac.Sum(nil))
}

// Claim is a redeemed claim code.
type Claim struct {
	MatrixID id.UserID
	// RoomID is the claimant's DM with the bot, where they are told.
	RoomID id.RoomID
	Entry  *Entry
}

// Redeem links ident to the Matrix user who asked for the code in text,
// if text is a valid code that has not expired: the code is used up, the
// link is confirmed (source claim, actor the claimant) and audited. ok is
// false when text is not a valid code (it is then just a message).
func (d *Directory) Redeem(ctx context.Context, ident Identity, text string) (claim *Claim, ok bool, err error) {
	norm := normalizeClaim(text)
	if norm == "" {
		return nil, false, nil
	}
	err = d.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		var mxid, room string
		var expires int64
		hash := d.claimHash(norm)
		err := d.db.QueryRow(ctx, `SELECT matrix_id, room_id, expires_at FROM governance_claim_code WHERE code_hash = $1`, hash).Scan(&mxid, &room, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		} else if err != nil {
			return fmt.Errorf("failed to look up claim code: %w", err)
		}
		if _, err = d.db.Exec(ctx, `DELETE FROM governance_claim_code WHERE code_hash = $1`, hash); err != nil {
			return fmt.Errorf("failed to use up claim code: %w", err)
		}
		if d.now().UnixMilli() >= expires {
			return nil
		}
		e, err := d.Link(ctx, mxid, LinkRequest{Identity: ident, MatrixID: id.UserID(mxid), Source: SourceClaim})
		if err != nil {
			return err
		}
		claim, ok = &Claim{MatrixID: id.UserID(mxid), RoomID: id.RoomID(room), Entry: e}, true
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return claim, ok, nil
}
