-- 009_alert_counts.sql - an alert's held messages are counted from the
-- index alone.
--
-- An alert's progress (store_alert_counts(): GET /api/v1/alerts/ID, the
-- 'alert' events) splits its queued messages held for later (quiet
-- hours, a pause) by channel. messages_alert_due has no channel, so that
-- count read every held message's row from the table: at a million held,
-- about 2 s of the event loop each time the counts were read
-- (bench/memory --alert). With next_attempt_at after channel,
-- messages_alert answers both the counts by state and channel (a scan in
-- index order, as before) and the held ones per channel (a range of it)
-- without reading a row. messages_alert_due stays for the due backlog.
DROP INDEX messages_alert;
CREATE INDEX messages_alert ON messages(alert_id, status, channel,
    next_attempt_at) WHERE alert_id IS NOT NULL;
