package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"maunium.net/go/mautrix/id"
)

// Lifetimes of the progress page's login links and sessions.
const (
	ProgressLinkTTL    = 10 * time.Minute
	ProgressSessionTTL = 8 * time.Hour
	// maxProgressLinks and maxProgressSessions cap the live links and
	// sessions: the oldest go first.
	maxProgressLinks    = 100
	maxProgressSessions = 100
)

// Why a login link is refused.
var (
	ErrLinkUnknown = errors.New("this login link is not valid")
	ErrLinkUsed    = errors.New("this login link was already used: ask the bot for a new one (gov-migration progress-link)")
	ErrLinkExpired = errors.New("this login link has expired: ask the bot for a new one (gov-migration progress-link)")
)

const (
	insertLinkQuery   = `INSERT INTO governance_progress_link (token_hash, admin, created_at, expires_at) VALUES ($1, $2, $3, $4)`
	pruneLinksQuery   = `DELETE FROM governance_progress_link WHERE expires_at < $1`
	getLinkQuery      = `SELECT admin, expires_at, used FROM governance_progress_link WHERE token_hash = $1`
	useLinkQuery      = `UPDATE governance_progress_link SET used = true WHERE token_hash = $1 AND NOT used`
	insertSessQuery   = `INSERT INTO governance_progress_session (session_hash, admin, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`
	pruneSessQuery    = `DELETE FROM governance_progress_session WHERE expires_at < $1`
	getSessQuery      = `SELECT admin, csrf_token, expires_at FROM governance_progress_session WHERE session_hash = $1`
	deleteSessQuery   = `DELETE FROM governance_progress_session WHERE session_hash = $1`
	oldestSessQuery   = `SELECT session_hash FROM governance_progress_session ORDER BY created_at DESC, session_hash`
	deleteOneSessLink = `DELETE FROM governance_progress_link WHERE token_hash = $1`
)

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// keepNewest deletes the rows of listQuery (keys, newest first) beyond max
// with deleteQuery.
func (gv *Governance) keepNewest(ctx context.Context, listQuery, deleteQuery string, limit int) error {
	rows, err := gv.DB.Query(ctx, listQuery)
	if err != nil {
		return err
	}
	var extra []string
	for n := 0; rows.Next(); n++ {
		var key string
		if err = rows.Scan(&key); err != nil {
			rows.Close()
			return err
		}
		if n >= limit {
			extra = append(extra, key)
		}
	}
	rows.Close()
	if err = rows.Err(); err != nil {
		return err
	}
	for _, key := range extra {
		if _, err = gv.DB.Exec(ctx, deleteQuery, key); err != nil {
			return err
		}
	}
	return nil
}

// IssueProgressLink makes a single-use login token for admin, valid for
// ProgressLinkTTL; only its hash is stored.
func (gv *Governance) IssueProgressLink(ctx context.Context, admin id.UserID) (token string, expires time.Time, err error) {
	now := gv.now()
	token, expires = randomToken(), now.Add(ProgressLinkTTL)
	err = gv.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		if _, err := gv.DB.Exec(ctx, pruneLinksQuery, now.UnixMilli()); err != nil {
			return err
		}
		if _, err := gv.DB.Exec(ctx, insertLinkQuery, hashToken(token), string(admin), now.UnixMilli(), expires.UnixMilli()); err != nil {
			return err
		}
		return gv.keepNewest(ctx, `SELECT token_hash FROM governance_progress_link ORDER BY created_at DESC, token_hash`, deleteOneSessLink, maxProgressLinks)
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("failed to store progress login link: %w", err)
	}
	return token, expires, nil
}

// progressSession is a logged-in admin of the progress page.
type progressSession struct {
	Admin id.UserID
	CSRF  string
}

// redeemProgressLink uses token once and opens a session for its admin:
// the session ID (for the cookie) and the session.
func (gv *Governance) redeemProgressLink(ctx context.Context, token string) (string, *progressSession, error) {
	now := gv.now()
	var sessionID string
	var sess progressSession
	err := gv.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		var admin string
		var expires int64
		var used bool
		err := gv.DB.QueryRow(ctx, getLinkQuery, hashToken(token)).Scan(&admin, &expires, &used)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrLinkUnknown
		} else if err != nil {
			return fmt.Errorf("failed to look up login link: %w", err)
		}
		if used {
			return ErrLinkUsed
		}
		if now.UnixMilli() >= expires {
			return ErrLinkExpired
		}
		res, err := gv.DB.Exec(ctx, useLinkQuery, hashToken(token))
		if err != nil {
			return fmt.Errorf("failed to use login link: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrLinkUsed
		}
		if _, err = gv.DB.Exec(ctx, pruneSessQuery, now.UnixMilli()); err != nil {
			return fmt.Errorf("failed to delete old sessions: %w", err)
		}
		sessionID, sess = randomToken(), progressSession{Admin: id.UserID(admin), CSRF: randomToken()}
		if _, err = gv.DB.Exec(ctx, insertSessQuery, hashToken(sessionID), admin, sess.CSRF, now.UnixMilli(), now.Add(ProgressSessionTTL).UnixMilli()); err != nil {
			return fmt.Errorf("failed to store session: %w", err)
		}
		return gv.keepNewest(ctx, oldestSessQuery, deleteSessQuery, maxProgressSessions)
	})
	if err != nil {
		return "", nil, err
	}
	return sessionID, &sess, nil
}

// progressSessionOf returns the live session of sessionID, or nil.
func (gv *Governance) progressSessionOf(ctx context.Context, sessionID string) (*progressSession, error) {
	if sessionID == "" {
		return nil, nil
	}
	var admin, csrf string
	var expires int64
	err := gv.DB.QueryRow(ctx, getSessQuery, hashToken(sessionID)).Scan(&admin, &csrf, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("failed to look up session: %w", err)
	}
	if gv.now().UnixMilli() >= expires {
		return nil, nil
	}
	return &progressSession{Admin: id.UserID(admin), CSRF: csrf}, nil
}

func (gv *Governance) endProgressSession(ctx context.Context, sessionID string) error {
	_, err := gv.DB.Exec(ctx, deleteSessQuery, hashToken(sessionID))
	return err
}
