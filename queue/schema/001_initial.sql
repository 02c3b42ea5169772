-- 001_initial.sql - the data model (doc/queue.md), all tables at once.
-- Times are INTEGER milliseconds since the Unix epoch (UTC).
-- Applied inside one transaction by store.c; PRAGMA user_version = 1 after.

CREATE TABLE members (
	id INTEGER PRIMARY KEY,
	phone TEXT UNIQUE,			-- E.164
	email TEXT UNIQUE,			-- lower-cased
	first_name TEXT,
	last_name TEXT,
	zip TEXT,
	time_zone TEXT,				-- IANA name
	attributes TEXT NOT NULL DEFAULT '{}',	-- JSON object
	tags TEXT NOT NULL DEFAULT '[]',	-- JSON array
	bouncing INTEGER NOT NULL DEFAULT 0,
	email_failures INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);

-- Opt-out per channel, global (not per list). A row means opted out.
CREATE TABLE sms_optout (
	member_id INTEGER PRIMARY KEY REFERENCES members(id) ON DELETE CASCADE,
	opted_out_at INTEGER NOT NULL,
	source TEXT NOT NULL			-- keyword, api, import, web, provider
);
CREATE TABLE email_optout (
	member_id INTEGER PRIMARY KEY REFERENCES members(id) ON DELETE CASCADE,
	opted_out_at INTEGER NOT NULL,
	source TEXT NOT NULL
);

CREATE TABLE lists (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	sender TEXT,
	welcome_sms TEXT,
	welcome_email_subject TEXT,
	welcome_email TEXT,
	double_optin INTEGER NOT NULL DEFAULT 0,
	questions TEXT NOT NULL DEFAULT '[]',	-- JSON array
	from_config INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE TABLE list_keywords (
	keyword TEXT PRIMARY KEY,		-- upper-case
	list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE
);

CREATE TABLE subscriptions (
	member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
	list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
	channel TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
	status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'left')),
	source TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (member_id, list_id, channel)
);
CREATE INDEX subscriptions_list ON subscriptions(list_id, status);

-- Append-only proof of consent.
CREATE TABLE consent_events (
	id INTEGER PRIMARY KEY,
	member_id INTEGER NOT NULL REFERENCES members(id),
	channel TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
	action TEXT NOT NULL CHECK (action IN ('opt_in', 'opt_out', 'confirm')),
	source TEXT NOT NULL,
	list_id INTEGER,
	message_id INTEGER,
	detail TEXT,
	created_at INTEGER NOT NULL
);
CREATE INDEX consent_events_member ON consent_events(member_id, id);
CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events
BEGIN
	SELECT RAISE(ABORT, 'consent_events is append-only');
END;
CREATE TRIGGER consent_events_no_delete BEFORE DELETE ON consent_events
BEGIN
	SELECT RAISE(ABORT, 'consent_events is append-only');
END;

CREATE TABLE staff (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL,
	email TEXT UNIQUE,
	role TEXT NOT NULL CHECK (role IN ('admin', 'organizer')),
	token_hash TEXT UNIQUE,			-- hex SHA-256 of the API token
	created_at INTEGER NOT NULL
);

CREATE TABLE alerts (
	id INTEGER PRIMARY KEY,
	name TEXT,
	audience TEXT NOT NULL,			-- JSON: {"list":..,"tags":[..]}
	channels TEXT NOT NULL,			-- JSON array: ["sms","email"]
	templates TEXT NOT NULL,		-- JSON object
	status TEXT NOT NULL CHECK (status IN ('draft', 'scheduled',
	    'sending', 'paused', 'done', 'cancelled')),
	cursor INTEGER NOT NULL DEFAULT 0,	-- last member id materialized
	counters TEXT NOT NULL DEFAULT '{}',	-- JSON object
	scheduled_at INTEGER,
	created_by INTEGER REFERENCES staff(id),
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);

CREATE TABLE conversations (
	id INTEGER PRIMARY KEY,
	member_id INTEGER NOT NULL REFERENCES members(id),
	status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
	assigned_staff INTEGER REFERENCES staff(id),
	unread INTEGER NOT NULL DEFAULT 0,
	last_message_at INTEGER,
	created_at INTEGER NOT NULL
);
CREATE INDEX conversations_member ON conversations(member_id, status);

CREATE TABLE messages (
	id INTEGER PRIMARY KEY,
	direction TEXT NOT NULL CHECK (direction IN ('out', 'in')),
	channel TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
	member_id INTEGER,
	sender TEXT,				-- [sender NAME] for SMS
	to_addr TEXT NOT NULL,
	from_addr TEXT,
	subject TEXT,
	body TEXT NOT NULL,
	html TEXT,
	status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent',
	    'delivered', 'undelivered', 'failed', 'expired', 'cancelled',
	    'suppressed', 'received')),
	priority INTEGER NOT NULL DEFAULT 5,
	attempts INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL,
	lease_until INTEGER,
	provider TEXT,
	provider_message_id TEXT,
	error_code INTEGER,
	error_text TEXT,
	encoding TEXT,				-- SMS: gsm7 or ucs2
	segments INTEGER,
	alert_id INTEGER,
	conversation_id INTEGER,
	idempotency_key TEXT UNIQUE,
	not_before INTEGER,
	expires_at INTEGER,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
-- Claims are per route (channel + sender), due messages by priority, then
-- age.
CREATE INDEX messages_due ON messages(channel, sender, priority DESC,
    next_attempt_at) WHERE status = 'queued';
CREATE INDEX messages_next_due ON messages(next_attempt_at)
    WHERE status = 'queued';
CREATE INDEX messages_expiry ON messages(expires_at)
    WHERE status = 'queued' AND expires_at IS NOT NULL;
CREATE INDEX messages_sending ON messages(lease_until)
    WHERE status = 'sending';
CREATE INDEX messages_provider_id ON messages(provider, provider_message_id)
    WHERE provider_message_id IS NOT NULL;
CREATE INDEX messages_member ON messages(member_id, id);
-- Covers the per-state counts of /metrics and /api/v1/status (a scan of
-- this index is ~10x faster than of the table).
CREATE INDEX messages_status ON messages(channel, status);
CREATE INDEX messages_alert ON messages(alert_id, status)
    WHERE alert_id IS NOT NULL;

-- Every state change of a message, for the API's history.
CREATE TABLE message_events (
	id INTEGER PRIMARY KEY,
	message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
	status TEXT NOT NULL,
	code INTEGER,
	text TEXT,
	created_at INTEGER NOT NULL
);
CREATE INDEX message_events_message ON message_events(message_id, id);
