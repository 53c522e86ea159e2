package telegram

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"maunium.net/go/mautrix/bridgev2/networkid"
)

// What is stored of basic-group messages, which have one ID per member
// account (each in the account's own message box):
//
//   - telegram_basic_message: per group and fingerprint (sender, date,
//     text), the ID the message was bridged under, and whether it was sent
//     from Matrix. The first login to claim a fingerprint sets it.
//   - telegram_basic_copy: per account and ID in its box, the fingerprint
//     of the message: the account's copy of it.
//
// Joined, they map an account's own ID to the bridged ID (edits, deletions,
// reactions, replies from Telegram) and the bridged ID to an account's own
// (Matrix → Telegram through that account). They persist, so a restart
// does not bridge a message again when another login catches up. Rows older
// than basicRetention go, and each table keeps at most basicMaxRows.

const (
	basicRetention = 30 * 24 * time.Hour
	basicMaxRows   = 200000
	// basicPruneEvery is how many claims pass between two prunes.
	basicPruneEvery = 512
	// basicMaxTwins is how many messages of one sender with the same text
	// in the same second are told apart.
	basicMaxTwins = 8
)

const (
	getBasicCopyQuery   = `SELECT fingerprint FROM telegram_basic_copy WHERE user_id=$1 AND box_id=$2`
	hasBasicCopyFPQuery = `SELECT box_id FROM telegram_basic_copy WHERE chat_id=$1 AND fingerprint=$2 AND user_id=$3`
	putBasicCopyQuery   = `INSERT INTO telegram_basic_copy (user_id, box_id, chat_id, fingerprint, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, box_id) DO NOTHING`
	claimBasicQuery     = `INSERT INTO telegram_basic_message (chat_id, fingerprint, message_id, from_matrix, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (chat_id, fingerprint) DO NOTHING`
	getBasicClaimQuery  = `SELECT message_id, from_matrix FROM telegram_basic_message WHERE chat_id=$1 AND fingerprint=$2`
	basicCanonicalQuery = `SELECT m.message_id, m.chat_id FROM telegram_basic_copy c JOIN telegram_basic_message m ON m.chat_id=c.chat_id AND m.fingerprint=c.fingerprint WHERE c.user_id=$1 AND c.box_id=$2`
	basicOwnIDQuery     = `SELECT c.box_id FROM telegram_basic_message m JOIN telegram_basic_copy c ON c.chat_id=m.chat_id AND c.fingerprint=m.fingerprint WHERE m.message_id=$1 AND c.user_id=$2`
	pruneBasicMsgQuery  = `DELETE FROM telegram_basic_message WHERE created_at < $1`
	pruneBasicCopyQuery = `DELETE FROM telegram_basic_copy WHERE created_at < $1`
	capBasicMsgQuery    = `SELECT created_at FROM telegram_basic_message ORDER BY created_at DESC LIMIT 1 OFFSET $1`
	capBasicCopyQuery   = `SELECT created_at FROM telegram_basic_copy ORDER BY created_at DESC LIMIT 1 OFFSET $1`
)

// RecordBasicCopy records message boxID of account userID as a copy of the
// message of chat chatID with fingerprint fp, and returns the fingerprint it
// was recorded under: fp, or fp with a suffix when the account already has
// another message with the same fingerprint (one sender posting the same
// text twice in a second). Recording a copy again returns the first answer.
func (s *Store) RecordBasicCopy(ctx context.Context, userID int64, boxID int, chatID int64, fp string, now time.Time) (string, error) {
	var known string
	err := s.db.QueryRow(ctx, getBasicCopyQuery, userID, boxID).Scan(&known)
	if err == nil {
		return known, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("failed to get basic group copy: %w", err)
	}
	for i := 0; i < basicMaxTwins; i++ {
		cand := fp
		if i > 0 {
			cand = fp + "#" + strconv.Itoa(i)
		}
		var other int
		err := s.db.QueryRow(ctx, hasBasicCopyFPQuery, chatID, cand, userID).Scan(&other)
		if err == nil {
			continue
		} else if !errors.Is(err, sql.ErrNoRows) {
			return "", fmt.Errorf("failed to look up basic group copy: %w", err)
		}
		if _, err := s.db.Exec(ctx, putBasicCopyQuery, userID, boxID, chatID, cand, now.UnixMilli()); err != nil {
			return "", fmt.Errorf("failed to store basic group copy: %w", err)
		}
		return cand, nil
	}
	return "", fmt.Errorf("too many basic group messages with the same fingerprint")
}

// ClaimBasicMessage claims the message of chat chatID with fingerprint fp
// for id, unless it was claimed before; it returns the ID the message is
// bridged under and whether it was sent from Matrix.
func (s *Store) ClaimBasicMessage(ctx context.Context, chatID int64, fp string, id networkid.MessageID, fromMatrix bool, now time.Time) (networkid.MessageID, bool, error) {
	if _, err := s.db.Exec(ctx, claimBasicQuery, chatID, fp, string(id), fromMatrix, now.UnixMilli()); err != nil {
		return "", false, fmt.Errorf("failed to claim basic group message: %w", err)
	}
	var got string
	var matrix bool
	if err := s.db.QueryRow(ctx, getBasicClaimQuery, chatID, fp).Scan(&got, &matrix); err != nil {
		return "", false, fmt.Errorf("failed to get basic group message claim: %w", err)
	}
	return networkid.MessageID(got), matrix, nil
}

// BasicCanonical returns the ID under which message boxID of account
// userID was bridged, and its group; "" when it is not known.
func (s *Store) BasicCanonical(ctx context.Context, userID int64, boxID int) (networkid.MessageID, int64, error) {
	var id string
	var chatID int64
	err := s.db.QueryRow(ctx, basicCanonicalQuery, userID, boxID).Scan(&id, &chatID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, nil
	} else if err != nil {
		return "", 0, fmt.Errorf("failed to get bridged basic group message: %w", err)
	}
	return networkid.MessageID(id), chatID, nil
}

// BasicOwnID returns account userID's own ID of the basic-group message
// bridged as id; 0 when the account has no copy of it.
func (s *Store) BasicOwnID(ctx context.Context, id networkid.MessageID, userID int64) (int, error) {
	var boxID int
	err := s.db.QueryRow(ctx, basicOwnIDQuery, string(id), userID).Scan(&boxID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("failed to get own basic group message ID: %w", err)
	}
	return boxID, nil
}

// PruneBasic deletes the rows older than the retention and the oldest past
// basicMaxRows in each table.
func (s *Store) PruneBasic(ctx context.Context, now time.Time) error {
	cutoff := now.Add(-basicRetention).UnixMilli()
	for _, q := range [][2]string{{capBasicMsgQuery, pruneBasicMsgQuery}, {capBasicCopyQuery, pruneBasicCopyQuery}} {
		limit := cutoff
		var capAt int64
		err := s.db.QueryRow(ctx, q[0], basicMaxRows).Scan(&capAt)
		if err == nil && capAt > limit {
			limit = capAt
		} else if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("failed to find basic group rows to prune: %w", err)
		}
		if _, err := s.db.Exec(ctx, q[1], limit); err != nil {
			return fmt.Errorf("failed to prune basic group rows: %w", err)
		}
	}
	return nil
}
