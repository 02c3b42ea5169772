-- 009_alert_counts.sql - the twin of queue/schema/009_alert_counts.sql:
-- messages_alert gains next_attempt_at, so an alert's held messages are
-- counted per channel from the index (an index-only scan once the
-- visibility map is set) instead of from every held row.
DROP INDEX messages_alert;
CREATE INDEX messages_alert ON messages(alert_id, status, channel,
    next_attempt_at) WHERE alert_id IS NOT NULL;
