-- 006_conversations.sql - the staff inbox (queue/store_conversations.c,
-- doc/conversations.md): what a conversation records beyond 001, staff
-- notes, saved replies and full-text search over conversation messages.
-- Times are INTEGER milliseconds since the Unix epoch (UTC).

-- What the member's latest text answers: the alert whose message they got
-- last within [conversations] attribution_window (alert_id), else the last
-- message they got (reply_to); the [sender NAME] they last texted, which
-- staff replies go through; the times of the last text in and of the last
-- staff reply out (the stale flag); when it last changed.
ALTER TABLE conversations ADD COLUMN alert_id INTEGER;
ALTER TABLE conversations ADD COLUMN reply_to INTEGER;
ALTER TABLE conversations ADD COLUMN sender TEXT;
ALTER TABLE conversations ADD COLUMN last_in_at INTEGER;
ALTER TABLE conversations ADD COLUMN last_out_at INTEGER;
ALTER TABLE conversations ADD COLUMN updated_at INTEGER;

-- An inbound conversation message: the outbound message it answers (the
-- attribution above, per text). An outbound one: the staff member who
-- wrote it (NULL for the daemon's own texts and for a token without a
-- staff member).
ALTER TABLE messages ADD COLUMN reply_to INTEGER;
ALTER TABLE messages ADD COLUMN staff_id INTEGER;

-- Existing conversations: their last text in and the sender it came in on.
UPDATE conversations SET
	last_in_at = (SELECT max(m.created_at) FROM messages m
	    WHERE m.conversation_id = conversations.id AND m.direction = 'in'),
	sender = (SELECT m.sender FROM messages m
	    WHERE m.conversation_id = conversations.id AND m.direction = 'in'
	    ORDER BY m.id DESC LIMIT 1),
	updated_at = coalesce(last_message_at, created_at);

-- Internal notes staff leave on a conversation; never sent.
CREATE TABLE conversation_notes (
	id INTEGER PRIMARY KEY,
	conversation_id INTEGER NOT NULL REFERENCES conversations(id)
	    ON DELETE CASCADE,
	staff_id INTEGER,			-- NULL: a token without staff
	body TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE INDEX conversation_notes_conv ON conversation_notes(conversation_id,
    id);

-- Answers staff reuse: templates ({{first_name|friend}}, template.h)
-- rendered for the member on reply.
CREATE TABLE saved_replies (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	body TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);

-- The inbox, newest activity first: read backwards, (last_message_at,
-- rowid) gives ORDER BY last_message_at DESC, id DESC without a sort.
CREATE INDEX conversations_activity ON conversations(last_message_at);
CREATE INDEX conversations_assigned ON conversations(assigned_staff,
    last_message_at) WHERE assigned_staff IS NOT NULL;
CREATE INDEX conversations_alert ON conversations(alert_id)
    WHERE alert_id IS NOT NULL;
-- A thread, in order.
CREATE INDEX messages_conversation ON messages(conversation_id, id)
    WHERE conversation_id IS NOT NULL;

-- Full-text search over the bodies of conversation messages (both ways).
-- External content: the text stays in messages; the triggers index only
-- rows with a conversation (bodies never change once written).
CREATE VIRTUAL TABLE conversation_fts USING fts5(body, content='messages',
    content_rowid='id', tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER conversation_fts_insert AFTER INSERT ON messages
    WHEN new.conversation_id IS NOT NULL
BEGIN
	INSERT INTO conversation_fts (rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER conversation_fts_link AFTER UPDATE OF conversation_id
    ON messages
    WHEN old.conversation_id IS NULL AND new.conversation_id IS NOT NULL
BEGIN
	INSERT INTO conversation_fts (rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER conversation_fts_unlink AFTER UPDATE OF conversation_id
    ON messages
    WHEN old.conversation_id IS NOT NULL AND new.conversation_id IS NULL
BEGIN
	INSERT INTO conversation_fts (conversation_fts, rowid, body)
	    VALUES ('delete', old.id, old.body);
END;
CREATE TRIGGER conversation_fts_delete AFTER DELETE ON messages
    WHEN old.conversation_id IS NOT NULL
BEGIN
	INSERT INTO conversation_fts (conversation_fts, rowid, body)
	    VALUES ('delete', old.id, old.body);
END;
INSERT INTO conversation_fts (rowid, body)
    SELECT id, body FROM messages WHERE conversation_id IS NOT NULL;
