-- 007_events.sql - live events kept for replay (daemon/events.c) and what
-- the email digests of new inbound conversation messages have covered
-- (daemon/notify.c). Times are INTEGER milliseconds since the Unix epoch.

-- Every event sent on GET /api/v1/events, in id order. AUTOINCREMENT: ids
-- are never reused, even once the oldest rows are pruned, so a browser's
-- Last-Event-ID stays meaningful across restarts.
CREATE TABLE events (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	type TEXT NOT NULL,
	data TEXT NOT NULL,			-- JSON object
	created_at INTEGER NOT NULL
);
CREATE INDEX events_created ON events(created_at);

-- One row (id = 1): the last inbound conversation message a digest
-- covered, and when the last digest went out.
CREATE TABLE notify_state (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	last_message_id INTEGER NOT NULL,
	last_digest_at INTEGER NOT NULL
);
-- The digests' walk over inbound conversation messages, by id.
CREATE INDEX messages_inbound_conv ON messages(id)
    WHERE direction = 'in' AND conversation_id IS NOT NULL;
-- An install upgrading to this version starts its digests from now: the
-- messages received before were never announced and will not be.
INSERT INTO notify_state (id, last_message_id, last_digest_at)
    VALUES (1, (SELECT coalesce(max(id), 0) FROM messages), 0);
