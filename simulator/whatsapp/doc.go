// Package wasim is an in-process fake WhatsApp server for tests and the
// local demo stack.
//
// An unmodified whatsmeow client connects to it over a real websocket on
// 127.0.0.1 and speaks the real protocol: the Noise XX handshake with a
// certificate chain signed by the simulator's root key, binary XML stanzas,
// QR and pairing-code linking with signed ADV device identities, prekey
// upload and fetch, usync, Signal sessions (pkmsg, msg) and sender keys
// (skmsg) through go.mau.fi/libsignal, receipts, retry receipts and the
// stream errors of logout, unpairing and replaced sessions.
//
// # Pointing a client at the simulator
//
// whatsmeow hard-codes the server URL and root key. A client is routed to the
// simulator with RouteClient (or the HTTP client of ClientHTTP, for a process
// that builds its own whatsmeow client), and must trust the simulator's root
// key: UseRootPublicKey(RootPublicKeyFromSeed(seed)), before any client
// connects. The root key is derived from a seed, so a gateway running as a
// separate process can be configured with the same seed, or with
// RootPublicKeyHex(seed) and ParseRootPublicKey.
//
// # Accounts and devices
//
// An Account is a simulated WhatsApp user: its phone (device 0) is simulated,
// with real Signal state held by the server in an in-memory whatsmeow store
// (package memstore). Devices linked through ScanQR or EnterPairingCode are
// the real clients (device 2, 3, … of the account). Every account has a
// phone-number JID and a LID; simulated phones keep their Signal sessions
// under the LID addresses of the devices.
//
// # Message IDs
//
// A message ID is chosen by its sender, as on WhatsApp. For messages sent by
// a simulated phone (SendText, SendGroupText, SendMessage,
// SendUndecryptable), the simulator makes one with NewMessageID and returns
// it: the client sees it as events.Message Info.ID, and its receipts (and
// retry receipts) carry it. For messages sent by a client, the ID is the one
// whatsmeow chose (SendResponse.ID) and Message.ID (WaitMessage) is that ID.
// The same ID stands for the message in every chat member's view; with the
// chat and the sender it identifies a message.
//
// # Media
//
// The media_conn IQ hands out the host MediaHost and an auth token. The media
// server speaks HTTPS with a certificate from a test CA made at Start: a
// client trusts it through MediaHTTPClient (Server.RouteClient sets it on a
// whatsmeow client; the connector takes it as TestServer.MediaHTTPClient).
// Uploads (POST /mms/<type>/<token>?auth=…) are checked against the token
// (the SHA-256 of what is uploaded) and kept in files; downloads serve
// them by direct path. Simulated phones encrypt and decrypt media as
// WhatsApp does (mediacrypt.go: HKDF-expanded IV, cipher and MAC keys per
// media type, AES-CBC, a 10-byte HMAC, both SHA-256 hashes): SendMedia and
// MediaMessage send files, Download and DownloadTo read back what a contact
// received. ExpireMedia makes a path answer 410 Gone; a media retry receipt
// (type server-error) for it is answered by the phone with a mediaretry
// notification carrying a new direct path, or an error when the phone does
// not have the file (DeleteMedia) or stays silent (IgnoreMediaRetries).
// SendPoll and SendPollVote send polls with a message secret and votes
// encrypted with it.
//
// # Groups, communities and newsletters
//
// Groups speak w:g2 IQs and w:gp2 notifications (subject, description,
// add, remove, promote, demote, announcement, locked), pictures the
// w:profile:picture IQ and picture notifications; CreateCommunity makes a
// community's parent group and its announcement group (linked_parent,
// default_sub_group); GroupInviteLink gives a link a client joins with.
//
// Newsletters (WhatsApp channels, newsletter.go) follow whatsmeow's wire
// format: metadata through w:mex GraphQL IQs (a query_id per operation, a
// web and a desktop ID for each, JSON variables in, a <result> with
// {"data":{"xwa2_…":…}} out), posts pushed to every follower's devices as
// <message from="…@newsletter" server_id=…> with the protobuf in clear in
// <plaintext>, admin edits as the new content under the post's ID with a
// <meta msg_edit_t=…> child, follow and unfollow from the phone as mex
// notifications (xwa2_notify_newsletter_on_join / _on_leave), and the
// newsletter IQs for past posts and live updates. whatsmeow documents live
// updates as reaction and view counts only, so the simulator delivers posts
// to followers with no subscription; that the real service does the same
// is assumed from whatsmeow, not verified against it.
//
// # Offline queue, history sync, disappearing messages
//
// What is sent to a linked device that is not connected (messages,
// receipts, notifications) waits in its offline queue, at most
// Config.MaxOffline stanzas (the oldest are dropped). At its next login the
// device gets an <ib><offline_preview/></ib> with the queue's size, the
// queue in order (each stanza marked offline), then <ib><offline/></ib>
// (whatsmeow's OfflineSyncPreview and OfflineSyncCompleted).
//
// After a device is linked, the phone sends it the account's history
// (history.go): history sync notifications (PUSH_NAME, INITIAL_BOOTSTRAP,
// RECENT) whose blobs are the real waHistorySync protobuf, zlib-compressed,
// encrypted and on the media server. SeedHistory (POST /seed-history) puts
// messages in a chat's past. SetDisappearingTimer (POST /disappearing) sets
// a chat's timer from a phone (EPHEMERAL_SETTING in direct chats, a w:gp2
// notification in groups); later messages carry it; the server deletes
// nothing itself.
//
// # What is recorded
//
// Messages that reach a simulated phone are decrypted and recorded
// (WaitMessage, Messages): direct messages once per recipient, group messages
// once per group. Receipts clients send are recorded (WaitReceipt, Receipts);
// retry receipts for messages of simulated phones are answered by
// re-encrypting the message.
package wasim
