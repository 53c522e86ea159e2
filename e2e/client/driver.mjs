// A Matrix user for Passerelle's end-to-end tests: matrix-js-sdk 37.5.0 with
// its Rust crypto, one client per process.
//
// Protocol: one JSON object per line on stdin, {"id": N, "cmd": "name",
// "args": {...}}; one JSON object per line on stdout for each command,
// {"id": N, "ok": true, "result": ...} or {"id": N, "ok": false, "error": "..."}.
// Commands run concurrently and answer in completion order. Everything else
// (the SDK's logging, ours) goes to stderr. The first command must be "login".
//
// Node 20 has no IndexedDB: crypto runs on the in-memory store, so a process
// is one device for its whole life. Waits poll the client's store rather than
// listen for events, which may have arrived before a listener was attached.

import readline from "node:readline";

// stdout is the protocol channel: route every console method to stderr before
// the SDK loads and captures them.
for (const m of ["log", "info", "debug", "trace", "warn"]) {
  console[m] = (...a) => console.error(...a);
}

// The SDK logs through loglevel at debug; its child loggers take the root
// level. DRIVER_SDK_LOG_LEVEL=debug brings everything back.
const sdkLevel = process.env.DRIVER_SDK_LOG_LEVEL || "info";
const loglevel = (await import("loglevel")).default;
loglevel.setLevel(sdkLevel);
const sdk = await import("matrix-js-sdk");
const { logger } = await import("matrix-js-sdk/lib/logger.js");
logger.setLevel?.(sdkLevel);

const log = (...a) => console.error(new Date().toISOString(), "[driver]", ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let client = null;
// The clear type of every event this client decrypted or sent: a redacted
// encrypted event loses it, and conversation still tells a redacted message
// from a taken-back reaction.
const clearTypes = new Map();
function remember(eventId, type) {
  if (eventId && type) clearTypes.set(eventId, type);
  return eventId;
}
// The local time (ms since the epoch) at which this client first held each
// event's clear content: decrypted, or received in the clear. The benchmark
// (cmd/passerelle-bench) measures latency up to this moment.
const seenAt = new Map();
function markSeen(ev) {
  const id = ev.getId();
  if (!id || seenAt.has(id) || ev.isDecryptionFailure() || ev.isBeingDecrypted?.()) return;
  if (ev.isEncrypted() && ev.getType() === "m.room.encrypted") return;
  seenAt.set(id, Date.now());
}
let autoJoin = null; // null = off; {inviters: [regex strings]} = on
const joining = new Set();

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function need(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function poll(what, timeoutMs, fn, intervalMs = 100) {
  const deadline = Date.now() + (timeoutMs ?? 30000);
  let last;
  for (;;) {
    last = await fn();
    if (last !== undefined && last !== null && last !== false) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs ?? 30000} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

function waitSyncPrepared(timeoutMs) {
  return poll("the first sync", timeoutMs, () => {
    const s = client.getSyncState();
    if (s === "ERROR") log("sync error state, waiting");
    return s === "PREPARED" || s === "SYNCING";
  });
}

function describeEvent(ev) {
  const out = {
    eventId: ev.getId(),
    sender: ev.getSender(),
    type: ev.getWireType(), // what the homeserver stores: m.room.encrypted in an encrypted room
    clearType: ev.getType(),
    encrypted: ev.isEncrypted(),
    content: ev.getContent(),
    ts: ev.getTs(),
  };
  if (ev.isState()) out.stateKey = ev.getStateKey();
  // A redacted event has no ciphertext left: the SDK, seeing one first
  // after its redaction, fails to decrypt it ("missing field algorithm");
  // that is not a decryption failure of what was sent.
  if (ev.isDecryptionFailure() && !ev.isRedacted()) out.decryptionError = String(ev.decryptionFailureReason || "decryption failed");
  if (ev.isBeingDecrypted?.()) out.decrypting = true;
  if (seenAt.has(ev.getId())) out.seenAt = seenAt.get(ev.getId());
  return out;
}

function describeRoom(r) {
  return {
    roomId: r.roomId,
    name: r.name,
    membership: r.getMyMembership(),
    encrypted: r.hasEncryptionStateEvent(),
    space: r.isSpaceRoom(),
    members: r.getMembers().map((m) => ({ userId: m.userId, membership: m.membership })),
  };
}

function roomOrThrow(roomId) {
  const room = client.getRoom(roomId);
  need(room, `room ${roomId} is not known to ${client.getUserId()}`);
  return room;
}

function timelineEvents(room) {
  // The live timeline, plus older timelines of the same set (a gappy sync
  // starts a new live timeline; the old events stay in the set).
  const seen = new Set();
  const evs = [];
  for (const tl of room.getUnfilteredTimelineSet().getTimelines()) {
    for (const ev of tl.getEvents()) {
      const id = ev.getId();
      if (!seen.has(id)) {
        seen.add(id);
        evs.push(ev);
      }
    }
  }
  evs.sort((a, b) => a.getTs() - b.getTs());
  return evs;
}

function matchesMessage(ev, f) {
  if (ev.isState()) return false;
  if (f.type && ev.getType() !== f.type) return false;
  if (!f.type && ev.getType() !== "m.room.message") return false;
  if (f.sender && ev.getSender() !== f.sender) return false;
  if (f.notSender && ev.getSender() === f.notSender) return false;
  const c = ev.getContent() || {};
  if (f.msgtype && c.msgtype !== f.msgtype) return false;
  if (f.bodyContains && !(typeof c.body === "string" && c.body.includes(f.bodyContains))) return false;
  if (typeof f.since === "number" && ev.getTs() < f.since) return false;
  return true;
}

function afterEvent(evs, eventId) {
  if (!eventId) return evs;
  const i = evs.findIndex((e) => e.getId() === eventId);
  return i < 0 ? evs : evs.slice(i + 1);
}

function membershipOf(room, userId) {
  return room.getMember(userId)?.membership ?? null;
}

// initRustCrypto turns the Rust crypto's tracing on at debug level: several
// lines per to-device message. Keep it at info unless asked.
function quietRustCrypto() {
  if (sdkLevel === "debug" || sdkLevel === "trace") return;
  import("@matrix-org/matrix-sdk-crypto-wasm")
    .then((wasm) => {
      new wasm.Tracing(wasm.LoggerLevel.Info).minLevel = wasm.LoggerLevel.Info;
    })
    .catch((e) => log("could not lower the crypto log level:", e.message));
}

// A room is usable once the client holds its state, not just a membership
// (a join returns before the next sync brings the room's state).
function stateLoaded(room) {
  return !!room.currentState.getStateEvents("m.room.create", "");
}

// joinedWithState says whether the client has joined room and holds its
// state. Dendrite sometimes sends a room joined right after its invite (the
// bridge invites a staff member and joins them at once with double
// puppeting) with no state at all, and never sends it later; a client would
// show that room broken forever. When a joined room has had no state for two
// seconds, the driver fetches it (/state), the way a client recovers, and
// says so in its log.
const stateless = new Map(); // roomId -> first seen joined without state (ms)
const repairing = new Set();
function joinedWithState(room) {
  if (!room || room.getMyMembership() !== "join") return false;
  if (stateLoaded(room)) {
    stateless.delete(room.roomId);
    return true;
  }
  const since = stateless.get(room.roomId);
  if (since === undefined) {
    stateless.set(room.roomId, Date.now());
  } else if (Date.now() - since > 2000 && !repairing.has(room.roomId)) {
    repairing.add(room.roomId);
    loadState(room)
      .catch((e) => log("could not load the state of", room.roomId, e.message))
      .finally(() => repairing.delete(room.roomId));
  }
  return false;
}

async function loadState(room) {
  log("room", room.roomId, "joined without state from the homeserver's sync; loading it with /state");
  const events = (await client.roomState(room.roomId)).map(client.getEventMapper());
  for (const ev of events) {
    if (ev.getType() === "m.room.encryption" && ev.getStateKey() === "") {
      await client.getCrypto()?.onCryptoEvent?.(room, ev);
    }
  }
  room.currentState.setStateEvents(events);
  room.recalculate();
}

async function joinInvites() {
  if (!client || !autoJoin) return;
  for (const room of client.getRooms()) {
    if (room.getMyMembership() !== "invite" || joining.has(room.roomId)) continue;
    const inviter = room.getMember(client.getUserId())?.events?.member?.getSender() ?? room.getDMInviter?.();
    if (autoJoin.inviters.length && !autoJoin.inviters.some((re) => new RegExp(re).test(inviter || ""))) continue;
    joining.add(room.roomId);
    log("auto-joining", room.roomId, "invited by", inviter);
    client.joinRoom(room.roomId).catch((e) => {
      log("auto-join failed", room.roomId, e.message);
      joining.delete(room.roomId);
    });
  }
}
setInterval(() => joinInvites().catch((e) => log("auto-join scan", e.message)), 200).unref();

// Attachment encryption, format v2: AES-256-CTR with a random key and a
// 128-bit IV whose low 64 bits (the counter) are zero, and the SHA-256 of
// the ciphertext.
const nodeCrypto = await import("node:crypto");

function b64unpadded(buf) {
  return Buffer.from(buf).toString("base64").replace(/=+$/, "");
}

function b64urlUnpadded(buf) {
  return Buffer.from(buf).toString("base64url");
}

function encryptAttachment(plain) {
  const key = nodeCrypto.randomBytes(32);
  const iv = Buffer.concat([nodeCrypto.randomBytes(8), Buffer.alloc(8)]);
  const cipher = nodeCrypto.createCipheriv("aes-256-ctr", key, iv);
  const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
  const sha256 = nodeCrypto.createHash("sha256").update(ciphertext).digest();
  return {
    ciphertext,
    file: {
      v: "v2",
      key: { kty: "oct", key_ops: ["encrypt", "decrypt"], alg: "A256CTR", k: b64urlUnpadded(key), ext: true },
      iv: b64unpadded(iv),
      hashes: { sha256: b64unpadded(sha256) },
    },
  };
}

function decryptAttachment(ciphertext, file) {
  need(file.v === "v2", `attachment version ${file.v}`);
  const want = file.hashes?.sha256;
  const got = b64unpadded(nodeCrypto.createHash("sha256").update(ciphertext).digest());
  need(want === got, `attachment hash mismatch: ${got} != ${want}`);
  const key = Buffer.from(file.key.k, "base64url");
  const iv = Buffer.from(file.iv, "base64");
  const decipher = nodeCrypto.createDecipheriv("aes-256-ctr", key, iv);
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
}

const commands = {
  // args: {baseUrl, user (localpart or full ID), password, deviceName?, autoJoin?, inviters?}
  async login(a) {
    need(!client, "already logged in");
    const tmp = sdk.createClient({ baseUrl: a.baseUrl });
    const resp = await tmp.loginRequest({
      type: "m.login.password",
      identifier: { type: "m.id.user", user: a.user },
      password: a.password,
      initial_device_display_name: a.deviceName || "passerelle-e2e",
    });
    client = sdk.createClient({
      baseUrl: a.baseUrl,
      userId: resp.user_id,
      accessToken: resp.access_token,
      deviceId: resp.device_id,
    });
    await client.initRustCrypto({ useIndexedDB: false });
    quietRustCrypto();
    client.on(sdk.MatrixEventEvent.Decrypted, (ev) => {
      if (!ev.isDecryptionFailure()) remember(ev.getId(), ev.getType());
      markSeen(ev);
    });
    client.on(sdk.RoomEvent.Timeline, (ev) => {
      if (!ev.isEncrypted()) markSeen(ev);
    });
    if (a.autoJoin) autoJoin = { inviters: a.inviters || [] };
    // A short long-poll: if the homeserver ever misses waking a sync, the next
    // one comes within seconds instead of after the default 30 s.
    await client.startClient({ initialSyncLimit: 50, lazyLoadMembers: false, pollTimeout: 5000 });
    await waitSyncPrepared(a.timeoutMs ?? 30000);
    log("logged in as", resp.user_id, "device", resp.device_id);
    return { userId: resp.user_id, deviceId: resp.device_id };
  },

  whoami() {
    return { userId: client.getUserId(), deviceId: client.getDeviceId() };
  },

  // args: {enabled, inviters?: [regex]}
  setAutoJoin(a) {
    autoJoin = a.enabled ? { inviters: a.inviters || [] } : null;
    return {};
  },

  // args: {userId, encrypted? (default true), name?, waitJoin? (default true), timeoutMs?}
  async createDM(a) {
    const initialState = [];
    if (a.encrypted !== false) {
      initialState.push({ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } });
    }
    const opts = { is_direct: true, invite: [a.userId], preset: "trusted_private_chat", initial_state: initialState };
    if (a.name) opts.name = a.name;
    const { room_id: roomId } = await client.createRoom(opts);
    await poll(`room ${roomId} in the store`, a.timeoutMs, () => {
      const room = client.getRoom(roomId);
      return joinedWithState(room);
    });
    if (a.waitJoin !== false) {
      await poll(`${a.userId} to join ${roomId}`, a.timeoutMs, () => membershipOf(client.getRoom(roomId), a.userId) === "join");
    }
    return { roomId };
  },

  // args: {roomId?, inviter?, timeoutMs?} -> {roomId}: the first pending invite that matches
  async waitInvite(a) {
    const roomId = await poll("an invite", a.timeoutMs, () => {
      for (const room of client.getRooms()) {
        if (room.getMyMembership() !== "invite") continue;
        if (a.roomId && room.roomId !== a.roomId) continue;
        const inviter = room.getMember(client.getUserId())?.events?.member?.getSender();
        if (a.inviter && inviter !== a.inviter) continue;
        return room.roomId;
      }
    });
    return { roomId };
  },

  async join(a) {
    await client.joinRoom(a.roomId);
    await poll(`join of ${a.roomId}`, a.timeoutMs, () => {
      const room = client.getRoom(a.roomId);
      return joinedWithState(room);
    });
    return { roomId: a.roomId };
  },

  // args: {roomId, userId}
  async invite(a) {
    roomOrThrow(a.roomId);
    await client.invite(a.roomId, a.userId);
    return {};
  },

  async leave(a) {
    await client.leave(a.roomId);
    return {};
  },

  // args: {roomId, userId, membership? (default join), timeoutMs?}
  async waitMember(a) {
    const want = a.membership || "join";
    await poll(`${a.userId} to be ${want} in ${a.roomId}`, a.timeoutMs, () => {
      const room = client.getRoom(a.roomId);
      return room && membershipOf(room, a.userId) === want;
    });
    return {};
  },

  // args: {roomId, body, formattedBody?, msgtype?}
  async send(a) {
    const content = { msgtype: a.msgtype || "m.text", body: a.body };
    if (a.formattedBody) {
      content.format = "org.matrix.custom.html";
      content.formatted_body = a.formattedBody;
    }
    roomOrThrow(a.roomId);
    const { event_id: eventId } = await client.sendMessage(a.roomId, content);
    return { eventId: remember(eventId, "m.room.message") };
  },

  // args: {roomId, type, content, stateKey?} -> raw (unencrypted) event send
  async sendEvent(a) {
    roomOrThrow(a.roomId);
    if (a.stateKey !== undefined) {
      const { event_id: eventId } = await client.sendStateEvent(a.roomId, a.type, a.content, a.stateKey);
      return { eventId };
    }
    const { event_id: eventId } = await client.sendEvent(a.roomId, a.type, a.content);
    return { eventId: remember(eventId, a.type) };
  },

  // args: {roomId, msgtype (m.image, m.file, ...), body, filename?, mimetype,
  // data (base64), info? (extra info fields), encrypt? (default: when the
  // room is encrypted)} -> {eventId, mxc}
  // Uploads the file as Element does: in an encrypted room, encrypted with
  // AES-256-CTR (the attachment format v2: JWK key, IV, SHA-256 of the
  // ciphertext), the homeserver only ever holding ciphertext.
  async sendFile(a) {
    const room = roomOrThrow(a.roomId);
    const plain = Buffer.from(a.data, "base64");
    const encrypt = a.encrypt ?? (await client.getCrypto().isEncryptionEnabledInRoom(a.roomId));
    const info = { mimetype: a.mimetype, size: plain.length, ...(a.info || {}) };
    const content = { msgtype: a.msgtype, body: a.body, info };
    if (a.filename) content.filename = a.filename;
    let upload = plain;
    let file = null;
    if (encrypt) {
      ({ ciphertext: upload, file } = encryptAttachment(plain));
    }
    const { content_uri: mxc } = await client.uploadContent(upload, {
      type: encrypt ? "application/octet-stream" : a.mimetype,
      name: a.filename || a.body,
      includeFilename: !encrypt,
    });
    if (encrypt) content.file = { ...file, url: mxc };
    else content.url = mxc;
    need(room, "no room");
    const { event_id: eventId } = await client.sendEvent(a.roomId, "m.room.message", content);
    return { eventId: remember(eventId, "m.room.message"), mxc };
  },

  // args: {content (a message's decrypted content)} -> {data, server} (both
  // base64): the file's plaintext (decrypted and its hash checked when the
  // content has an EncryptedFile) and the bytes the homeserver serves.
  async downloadFile(a) {
    const c = a.content || {};
    const mxc = c.file?.url || c.url;
    need(typeof mxc === "string" && mxc.startsWith("mxc://"), "no mxc URI in the content");
    const [server, mediaId] = mxc.slice("mxc://".length).split("/");
    const url = `${client.getHomeserverUrl()}/_matrix/client/v1/media/download/${encodeURIComponent(server)}/${encodeURIComponent(mediaId)}`;
    const resp = await fetch(url, { headers: { Authorization: `Bearer ${client.getAccessToken()}` } });
    need(resp.ok, `download of ${mxc}: HTTP ${resp.status}`);
    const got = Buffer.from(await resp.arrayBuffer());
    const data = c.file ? decryptAttachment(got, c.file) : got;
    return { data: data.toString("base64"), server: got.toString("base64") };
  },

  // args: {roomId, sender?, notSender?, bodyContains?, msgtype?, type?, since? (ts ms), after? (event ID), timeoutMs?}
  async waitMessage(a) {
    const ev = await poll(`a message in ${a.roomId} matching ${JSON.stringify(a)}`, a.timeoutMs, () => {
      const room = client.getRoom(a.roomId);
      if (!room) return null;
      return afterEvent(timelineEvents(room), a.after).find((e) => matchesMessage(e, a));
    }).catch((e) => {
      const room = client.getRoom(a.roomId);
      const recent = room ? timelineEvents(room).slice(-15).map(describeEvent) : [];
      throw new Error(`${e.message}; recent events: ${JSON.stringify(recent)}`);
    });
    return describeEvent(ev);
  },

  // args: {roomId, limit?} -> timeline, oldest first
  messages(a) {
    const evs = timelineEvents(roomOrThrow(a.roomId));
    return (a.limit ? evs.slice(-a.limit) : evs).map(describeEvent);
  },

  // args: {roomId} -> every event of the room in the homeserver's order,
  // from one initial /sync filtered to the room with no timeline limit,
  // decrypted. It does not rely on the client's timelines (a gappy sync
  // after the homeserver restarts can leave a hole that scrollback does not
  // fill) nor on /messages (Dendrite v0.13.8 skips or repeats events that
  // share a depth at a page boundary).
  async serverHistory(a) {
    const room = roomOrThrow(a.roomId);
    const filter = {
      presence: { types: [] },
      account_data: { types: [] },
      room: {
        rooms: [a.roomId],
        timeline: { limit: 1000000 },
        state: { types: [] },
        ephemeral: { types: [] },
        account_data: { types: [] },
      },
    };
    const res = await client.http.authedRequest(sdk.Method.Get, "/sync", {
      filter: JSON.stringify(filter),
      timeout: "0",
    });
    const timeline = res.rooms?.join?.[a.roomId]?.timeline;
    need(timeline, `no timeline for ${a.roomId} in the sync`);
    need(!timeline.limited, `the timeline of ${a.roomId} was cut short`);
    // The client's own copy of an event when it has one (decrypted as it
    // arrived); the others are decrypted here.
    const mapper = client.getEventMapper({ decrypt: false });
    let known = 0;
    const evs = timeline.events.map((e) => {
      const have = room.findEventById(e.event_id);
      if (have) known++;
      return have ?? mapper({ ...e, room_id: a.roomId });
    });
    await Promise.all(evs.map(async (e) => {
      await client.decryptEventIfNeeded(e);
      await e.getDecryptionPromise?.();
    }));
    log("serverHistory", a.roomId, "events", evs.length, "known to the client", known);
    return evs.map(describeEvent);
  },

  // args: {roomId, type, stateKey?} -> one {stateKey, sender, content} or a list when stateKey is omitted
  roomState(a) {
    const st = roomOrThrow(a.roomId).currentState;
    if (a.stateKey !== undefined) {
      const ev = st.getStateEvents(a.type, a.stateKey);
      return ev ? { stateKey: ev.getStateKey(), sender: ev.getSender(), content: ev.getContent() } : null;
    }
    return st.getStateEvents(a.type).map((ev) => ({ stateKey: ev.getStateKey(), sender: ev.getSender(), content: ev.getContent() }));
  },

  // args: {roomId} -> [{userId, membership}] as the homeserver answers
  // GET /rooms/{roomId}/members now, not as the client has synced them.
  async serverMembers(a) {
    const res = await client.http.authedRequest(sdk.Method.Get, `/rooms/${encodeURIComponent(a.roomId)}/members`);
    return (res.chunk ?? []).map((ev) => ({ userId: ev.state_key, membership: ev.content?.membership }));
  },

  roomMembers(a) {
    return roomOrThrow(a.roomId)
      .getMembers()
      .map((m) => ({ userId: m.userId, membership: m.membership, displayName: m.rawDisplayName || m.name }));
  },

  // An OpenID token (POST /user/{userId}/openid/request_token), as a widget
  // or an integration manager gets one: {access_token, token_type,
  // matrix_server_name, expires_in}.
  async openIDToken() {
    return await client.getOpenIdToken();
  },

  async displayName(a) {
    const p = await client.getProfileInfo(a.userId);
    return { displayName: p.displayname ?? null, avatarUrl: p.avatar_url ?? null };
  },

  // The event as the homeserver stores it, fetched with this user's token.
  async rawEvent(a) {
    return await client.fetchRoomEvent(a.roomId, a.eventId);
  },

  rooms() {
    return client.getRooms().map(describeRoom);
  },

  // args: {name?, nameContains?, member?, exclude?: [roomId], spaces?, autoJoin?, inviters?, timeoutMs?}
  // Waits for a joined room that matches, with its state loaded; with
  // autoJoin, accepts invites (from inviters matching, if given) while
  // waiting. Spaces (such as the bridge's per-login space) are skipped unless
  // spaces is true.
  async waitRoom(a) {
    const exclude = new Set(a.exclude || []);
    const room = await poll(`a room matching ${JSON.stringify(a)}`, a.timeoutMs, async () => {
      for (const room of client.getRooms()) {
        if (exclude.has(room.roomId)) continue;
        const mine = room.getMyMembership();
        if (mine === "invite" && a.autoJoin && !joining.has(room.roomId)) {
          const inviter = room.getMember(client.getUserId())?.events?.member?.getSender();
          if (!a.inviters || a.inviters.some((re) => new RegExp(re).test(inviter || ""))) {
            joining.add(room.roomId);
            client.joinRoom(room.roomId).catch((e) => {
              log("join failed", room.roomId, e.message);
              joining.delete(room.roomId);
            });
          }
          continue;
        }
        if (!joinedWithState(room)) continue;
        if (!a.spaces && room.isSpaceRoom()) continue;
        if (a.name && room.name !== a.name) continue;
        if (a.nameContains && !room.name.includes(a.nameContains)) continue;
        if (a.member && !["join", "invite"].includes(membershipOf(room, a.member))) continue;
        return room;
      }
    }, 150).catch((e) => {
      // Say what the client does have, to tell a missing invite from a room
      // whose state or name never arrived.
      const rooms = client.getRooms().map((r) => ({
        roomId: r.roomId, membership: r.getMyMembership(), name: r.name, stateLoaded: stateLoaded(r),
      }));
      throw new Error(`${e.message}; the client has: ${JSON.stringify(rooms)}`);
    });
    return describeRoom(room);
  },

  // ---- Conversation: replies, edits, redactions, reactions, receipts, typing, presence.

  // args: {roomId, eventId, body} -> {eventId}: an m.text reply (m.in_reply_to)
  async reply(a) {
    roomOrThrow(a.roomId);
    const content = { msgtype: "m.text", body: a.body, "m.relates_to": { "m.in_reply_to": { event_id: a.eventId } } };
    const { event_id: eventId } = await client.sendEvent(a.roomId, "m.room.message", content);
    return { eventId: remember(eventId, "m.room.message") };
  },

  // args: {roomId, eventId, body} -> {eventId}: an edit (m.replace with m.new_content)
  async edit(a) {
    roomOrThrow(a.roomId);
    const content = {
      msgtype: "m.text",
      body: `* ${a.body}`,
      "m.new_content": { msgtype: "m.text", body: a.body },
      "m.relates_to": { rel_type: "m.replace", event_id: a.eventId },
    };
    const { event_id: eventId } = await client.sendEvent(a.roomId, "m.room.message", content);
    return { eventId: remember(eventId, "m.room.message") };
  },

  // args: {roomId, eventId, reason?} -> {eventId} of the redaction
  async redact(a) {
    roomOrThrow(a.roomId);
    const res = await client.redactEvent(a.roomId, a.eventId, undefined, a.reason ? { reason: a.reason } : undefined);
    return { eventId: res.event_id };
  },

  // args: {roomId, eventId, key} -> {eventId}: an m.reaction annotation
  async react(a) {
    roomOrThrow(a.roomId);
    const content = { "m.relates_to": { rel_type: "m.annotation", event_id: a.eventId, key: a.key } };
    const { event_id: eventId } = await client.sendEvent(a.roomId, "m.reaction", content);
    return { eventId: remember(eventId, "m.reaction") };
  },

  // args: {roomId, eventId, key} -> {eventId} of the redaction: takes back
  // this user's reaction with key on eventId
  async unreact(a) {
    const room = roomOrThrow(a.roomId);
    const mine = timelineEvents(room).find((ev) => {
      const rel = ev.getRelation?.();
      return ev.getType() === "m.reaction" && !ev.isRedacted() && ev.getSender() === client.getUserId() &&
        rel?.rel_type === "m.annotation" && rel.event_id === a.eventId && rel.key === a.key;
    });
    need(mine, `no reaction ${a.key} of ${client.getUserId()} on ${a.eventId}`);
    const res = await client.redactEvent(a.roomId, mine.getId());
    return { eventId: res.event_id };
  },

  // args: {roomId, eventId, type? (m.read, m.read.private)} -> {}: a read receipt
  async readReceipt(a) {
    roomOrThrow(a.roomId);
    const type = a.type || "m.read";
    await client.http.authedRequest(sdk.Method.Post,
      `/rooms/${encodeURIComponent(a.roomId)}/receipt/${encodeURIComponent(type)}/${encodeURIComponent(a.eventId)}`, undefined, {});
    return {};
  },

  // args: {roomId, eventId} -> {}: the fully-read marker and the read receipt, as Element sets them
  async readMarkers(a) {
    roomOrThrow(a.roomId);
    await client.http.authedRequest(sdk.Method.Post, `/rooms/${encodeURIComponent(a.roomId)}/read_markers`, undefined,
      { "m.fully_read": a.eventId, "m.read": a.eventId });
    return {};
  },

  // args: {roomId, typing, timeoutMs?} -> {}
  async typing(a) {
    roomOrThrow(a.roomId);
    await client.sendTyping(a.roomId, !!a.typing, a.typingTimeoutMs ?? 30000);
    return {};
  },

  // args: {roomId} -> the room's messages with their relations, oldest first:
  // [{eventId, sender, type, body, msgtype, replyTo, redacted, edits:
  // [{eventId, sender, body}], latestBody, reactions: [{key, sender,
  // eventId}]}]. body is the original text; edits are listed and applied
  // (latestBody: the last edit by the original sender); redacted messages
  // are marked; reactions taken back are left out.
  conversation(a) {
    const evs = timelineEvents(roomOrThrow(a.roomId)).filter((ev) => !ev.isState());
    const byId = new Map();
    const msgs = [];
    for (const ev of evs) {
      // A redacted encrypted event has lost its clear type: use the one seen
      // before; one never seen decrypted counts as a (redacted) message.
      let type = ev.getType();
      if (ev.isRedacted() && type === "m.room.encrypted") type = clearTypes.get(ev.getId()) ?? "m.room.message";
      const rel = ev.getRelation?.() || ev.getWireContent()?.["m.relates_to"] || null;
      if (type === "m.room.message" && rel?.rel_type === "m.replace") continue;
      if (type !== "m.room.message" && type !== "m.sticker") continue;
      const c = ev.getOriginalContent?.() || ev.getContent() || {};
      const m = {
        eventId: ev.getId(),
        sender: ev.getSender(),
        type,
        body: c.body ?? null,
        msgtype: c.msgtype ?? null,
        replyTo: c["m.relates_to"]?.["m.in_reply_to"]?.event_id ?? ev.replyEventId ?? null,
        redacted: ev.isRedacted(),
        edits: [],
        latestBody: c.body ?? null,
        reactions: [],
      };
      if (ev.isDecryptionFailure() && !ev.isRedacted()) m.decryptionError = String(ev.decryptionFailureReason || "decryption failed");
      byId.set(m.eventId, m);
      msgs.push(m);
    }
    for (const ev of evs) {
      const rel = ev.getRelation?.() || ev.getWireContent()?.["m.relates_to"];
      if (!rel?.event_id) continue;
      const target = byId.get(rel.event_id);
      if (!target) continue;
      if (ev.getType() === "m.room.message" && rel.rel_type === "m.replace" && !ev.isRedacted()) {
        const body = ev.getContent()?.["m.new_content"]?.body ?? null;
        target.edits.push({ eventId: ev.getId(), sender: ev.getSender(), body });
        if (ev.getSender() === target.sender && !target.redacted) target.latestBody = body;
      } else if (ev.getType() === "m.reaction" && rel.rel_type === "m.annotation" && !ev.isRedacted()) {
        target.reactions.push({ key: rel.key, sender: ev.getSender(), eventId: ev.getId() });
      }
    }
    return msgs;
  },

  // args: {roomId} -> {userId: {eventId, ts}}: every member's m.read receipt
  receipts(a) {
    const room = roomOrThrow(a.roomId);
    const out = {};
    for (const m of room.getMembers()) {
      const r = room.getReadReceiptForUserId(m.userId, true, "m.read");
      if (r) out[m.userId] = { eventId: r.eventId, ts: r.data?.ts ?? null };
    }
    return out;
  },

  // args: {roomId} -> [userId]: who is typing now
  typingUsers(a) {
    return roomOrThrow(a.roomId).getMembers().filter((m) => m.typing).map((m) => m.userId).sort();
  },

  // args: {userId, server? (ask the homeserver rather than the synced state)}
  // -> {presence, lastActiveAgo, currentlyActive}
  async presence(a) {
    if (a.server) {
      const r = await client.getPresence(a.userId);
      return { presence: r.presence ?? null, lastActiveAgo: r.last_active_ago ?? null, currentlyActive: r.currently_active ?? null };
    }
    const u = client.getUser(a.userId);
    return { presence: u?.presence ?? null, lastActiveAgo: u?.lastActiveAgo ?? null, currentlyActive: u?.currentlyActive ?? null };
  },

  async stop() {
    client?.stopClient();
    setTimeout(() => process.exit(0), 50);
    return {};
  },
};

const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on("line", async (line) => {
  if (!line.trim()) return;
  let msg;
  try {
    msg = JSON.parse(line);
  } catch (e) {
    out({ id: null, ok: false, error: `bad JSON: ${e.message}` });
    return;
  }
  const fn = commands[msg.cmd];
  try {
    need(fn, `unknown command ${msg.cmd}`);
    need(msg.cmd === "login" || client, "login first");
    const result = await fn(msg.args || {});
    out({ id: msg.id, ok: true, result: result ?? null });
  } catch (e) {
    log(`command ${msg.cmd} failed:`, e?.stack || e);
    out({ id: msg.id, ok: false, error: String(e?.message || e) });
  }
});
rl.on("close", () => {
  client?.stopClient();
  process.exit(0);
});
process.on("unhandledRejection", (e) => log("unhandled rejection:", e?.stack || e));
