// Package tgsim is an in-process fake Telegram data centre.
//
// It serves the real MTProto protocol (key exchange, encryption, containers)
// through gotd's tgtest server on a loopback TCP socket, so an unmodified gotd
// client (github.com/gotd/td/telegram) connects to it exactly as it would to
// Telegram. On top of that it keeps a small in-memory world: accounts, contacts,
// one-to-one message histories with per-user message IDs and pts, login codes,
// two-factor passwords checked with real SRP, and QR login tokens.
//
// # Message IDs
//
// As on Telegram, every user has their own message ID sequence for private
// chats: a message from A to B has one ID in A's history and another in B's.
// [Message.ID] is always the ID in the recipient's (To) history, which is what
// the recipient's client sees in its updates; [Message.SenderMsgID] is the ID
// in the sender's (From) history, which is what the sending client got back
// from messages.sendMessage. [Message.IDFor] picks the right one for a user.
//
// # Updates
//
// Each user has a pts counter, bumped once per message stored in their
// history. New messages are pushed as updates (seq 0) to every online session
// of the recipient, and to the sender's other sessions. Sessions that were
// offline catch up with updates.getDifference. Connections that wrapped a
// request in invokeWithoutUpdates never receive pushes. As on Telegram, the
// server does not push what a client missed when it reconnects: gotd's
// updates.Manager fetches it with updates.getDifference when it starts, when a
// pts gap shows up (after ~0.5 s) or after 15 minutes of silence.
package tgsim
