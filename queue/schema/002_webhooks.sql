-- 002_webhooks.sql - what provider webhooks need (issue 3): inbound
-- de-duplication, the order of delivery reports, and reports that arrive
-- before the provider's own answer to the send.
-- Times are INTEGER milliseconds since the Unix epoch (UTC).

-- A provider retries a webhook it thinks failed; its message id makes
-- the second delivery a no-op (queue_inbound_store()).
CREATE UNIQUE INDEX messages_inbound_provider_id
    ON messages(provider, provider_message_id) WHERE direction = 'in';

-- The provider's event order (Plivo's Sequence) of the last delivery
-- report applied to the message; a report with a lower one is stale.
ALTER TABLE messages ADD COLUMN status_sequence INTEGER;

-- Delivery reports for a provider message id no message carries yet: the
-- callback overtook the provider's answer to our request. queue_mark_sent()
-- applies the report when it records that id; rows older than an hour are
-- dropped. A report that names our message id (client-ref, dlr-url) while
-- the message is still queued or sending is kept under '#<message id>'.
CREATE TABLE status_early (
	provider TEXT NOT NULL,
	provider_message_id TEXT NOT NULL,
	status TEXT NOT NULL CHECK (status IN ('sent', 'delivered',
	    'undelivered', 'failed')),
	code INTEGER,
	text TEXT,
	sequence INTEGER,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (provider, provider_message_id)
) WITHOUT ROWID;
CREATE INDEX status_early_created ON status_early(created_at);
