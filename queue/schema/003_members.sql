-- 003_members.sql - what keyword routing, members and imports need
-- (issue 4). Times are INTEGER milliseconds since the Unix epoch (UTC).

-- The follow-up question a member was asked and has not answered yet
-- (one at a time): store_prompt_*().
CREATE TABLE member_prompts (
	member_id INTEGER PRIMARY KEY REFERENCES members(id) ON DELETE CASCADE,
	list_id INTEGER NOT NULL,
	question INTEGER NOT NULL,		-- index into lists.questions
	attempts INTEGER NOT NULL DEFAULT 0,	-- bad answers so far
	asked_at INTEGER NOT NULL
);

-- Compliance replies (the one STOP confirmation, HELP answers) go to a
-- member who may have just opted out: the send-time opt-out check lets
-- exactly these through (queue_new.optout_exempt).
ALTER TABLE messages ADD COLUMN optout_exempt INTEGER NOT NULL DEFAULT 0;

-- A list's members in member order (list pages, exports, alert fan-out).
CREATE INDEX subscriptions_list_member ON subscriptions(list_id, member_id);
-- Members marked bouncing, for /metrics.
CREATE INDEX members_bouncing ON members(id) WHERE bouncing = 1;
