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
//
// # Media
//
// Files are kept in a private directory, never in memory: upload.saveFilePart
// and upload.saveBigFilePart accept parts in any order with a shorter last
// part (all others of one size, a multiple of 1 KB dividing 512 KB, checked
// when the file is used, as Telegram does), messages.uploadMedia and
// messages.sendMedia turn them into photos (with their pixel size) or
// documents (with the client's attributes), and upload.getFile serves
// inputPhotoFileLocation and inputDocumentFileLocation (size "m" is the
// thumbnail when there is one) against the current file reference.
// ExpireFileReferences makes every reference stale (FILE_REFERENCE_EXPIRED)
// until the client fetches the message again with messages.getMessages.
// Locations (point, venue, live), contacts and polls are stored as sent;
// messages.sendVote and VotePoll count votes, pushed as updateMessagePoll
// with the results each participant sees. SendMedia makes a contact send
// any of these; MediaBytes and OpenMedia read back what a message carries.
//
// # Photos
//
// Chats' photos (SetChannelPhoto, SetChatPhoto, EditChatPhoto,
// channels.editPhoto, messages.editChatPhoto, with their service messages)
// and users' profile photos (SetProfilePhoto, photos.uploadProfilePhoto;
// shown in user objects and users.getFullUser, pushed to the users who
// know the account as updateUser) also download with upload.getFile of an
// inputPeerPhotoFileLocation, by peer and photo ID, without a file
// reference.
package tgsim
