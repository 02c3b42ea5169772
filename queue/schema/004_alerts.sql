-- 004_alerts.sql - action alerts (broadcasts). Times are INTEGER
-- milliseconds since the Unix epoch (UTC).
--
-- 001 created a first sketch of this table that no code ever wrote to; it
-- is replaced by the shape the alert code uses (queue/store_alerts.c).

DROP TABLE alerts;
CREATE TABLE alerts (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL,
	status TEXT NOT NULL CHECK (status IN ('draft', 'scheduled',
	    'sending', 'paused', 'done', 'cancelled')),
	pause_reason TEXT,			-- why it paused (guard rails)
	-- Who: JSON {"lists": [id, ...], "tags": [..], "fields": {k: v},
	-- "zip_prefix": "..", "follow_up": {"alert": id, "who": "missed" |
	-- "no_reply"}}; every key but "lists" is optional.
	audience TEXT NOT NULL,
	sms INTEGER NOT NULL DEFAULT 0,		-- channels: 1 = on
	email INTEGER NOT NULL DEFAULT 0,
	sender TEXT,				-- NULL = the first list's
	sms_body TEXT,				-- templates (template.h)
	email_subject TEXT,
	email_text TEXT,
	email_html TEXT,
	urgent INTEGER NOT NULL DEFAULT 0,	-- overrides quiet hours
	validity_s INTEGER NOT NULL,		-- unsent messages expire
	scheduled_at INTEGER,			-- NULL = when sent
	-- Fan-out: members with id <= audience_max_id (fixed when sending
	-- starts) are walked in id order; cursor is the last id walked.
	audience_max_id INTEGER,
	cursor INTEGER NOT NULL DEFAULT 0,
	fanout_done INTEGER NOT NULL DEFAULT 0,
	audience_sms INTEGER,			-- reached when sending started
	audience_email INTEGER,
	create_key TEXT UNIQUE,			-- Idempotency-Key of create
	send_key TEXT UNIQUE,			-- ... and of send
	created_by INTEGER,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	started_at INTEGER,
	finished_at INTEGER
);
CREATE INDEX alerts_live ON alerts(status)
    WHERE status IN ('scheduled', 'sending');

-- A follow-up alert asks, per member, what became of an earlier alert's
-- message: messages_member (member_id, id) finds them by member.

-- A list's time zone: the fallback for quiet hours when neither the
-- member nor the number tells one.
ALTER TABLE lists ADD COLUMN time_zone TEXT;

-- An alert's counts by state and channel, read in index order: a
-- GROUP BY over a million messages without sorting them in memory.
DROP INDEX messages_alert;
CREATE INDEX messages_alert ON messages(alert_id, status, channel)
    WHERE alert_id IS NOT NULL;

-- An alert's due backlog (queued and due, by alert) without reading the
-- messages quiet hours hold for later.
CREATE INDEX messages_alert_due ON messages(alert_id, next_attempt_at)
    WHERE status = 'queued' AND alert_id IS NOT NULL;
