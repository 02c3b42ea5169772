-- 003_members.sql (PostgreSQL) - what keyword routing, members and imports
-- need (issue 4). The twin of queue/schema/003_members.sql. Times are
-- BIGINT milliseconds since the Unix epoch (UTC).

-- The follow-up question a member was asked and has not answered yet
-- (one at a time): store_prompt_*().
CREATE TABLE member_prompts (
	member_id BIGINT PRIMARY KEY REFERENCES members(id) ON DELETE CASCADE,
	list_id BIGINT NOT NULL,
	question BIGINT NOT NULL,		-- index into lists.questions
	attempts BIGINT NOT NULL DEFAULT 0,	-- bad answers so far
	asked_at BIGINT NOT NULL
);

-- Compliance replies (the one STOP confirmation, HELP answers) pass the
-- send-time opt-out check (queue_new.optout_exempt).
ALTER TABLE messages ADD COLUMN optout_exempt BIGINT NOT NULL DEFAULT 0;

-- A list's members in member order (list pages, exports, alert fan-out).
CREATE INDEX subscriptions_list_member ON subscriptions(list_id, member_id);
-- Members marked bouncing, for /metrics.
CREATE INDEX members_bouncing ON members(id) WHERE bouncing = 1;
