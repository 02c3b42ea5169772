-- 002_webhooks.sql (PostgreSQL) - what provider webhooks need (issue 3):
-- inbound de-duplication, the order of delivery reports, and reports that
-- arrive before the provider's own answer to the send. The twin of
-- queue/schema/002_webhooks.sql. Times are BIGINT milliseconds (UTC).

-- A provider retries a webhook it thinks failed; its message id makes
-- the second delivery a no-op (queue_inbound_store()). Unique across
-- nodes: any node may take the retry.
CREATE UNIQUE INDEX messages_inbound_provider_id
    ON messages(provider, provider_message_id) WHERE direction = 'in';

-- The provider's event order (Plivo's Sequence) of the last delivery
-- report applied to the message; a report with a lower one is stale.
ALTER TABLE messages ADD COLUMN status_sequence BIGINT;

-- Delivery reports for a provider message id no message carries yet (see
-- the SQLite file). SQLite's WITHOUT ROWID is a storage detail: a plain
-- table with the same primary key here.
CREATE TABLE status_early (
	provider TEXT NOT NULL,
	provider_message_id TEXT NOT NULL,
	status TEXT NOT NULL CHECK (status IN ('sent', 'delivered',
	    'undelivered', 'failed')),
	code BIGINT,
	text TEXT,
	sequence BIGINT,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (provider, provider_message_id)
);
CREATE INDEX status_early_created ON status_early(created_at);
