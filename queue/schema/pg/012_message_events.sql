-- 012_message_events.sql (PostgreSQL) - the "message" event of each state
-- change of an outbound conversation message (a staff reply), written by
-- the statement that makes the change, on any node.
--
-- On SQLite, queue.c's queue_observe() hook calls daemon/conversations.c,
-- which publishes the event in the change's group. On PostgreSQL the
-- changes are single statements of queue/pg_queue.c and
-- queue/store_conversations_pg.c, run by whichever node claims, sends or
-- receives the delivery report; these triggers write the event row and
-- its NOTIFY in the same transaction, so the event is durable with the
-- change and every node streams it (daemon/events.c reads the table back
-- in id order; queue/store_events_pg.c has the design). The WHEN clauses
-- are evaluated without calling the function, so the messages that are in
-- no conversation (alerts, the API) pay next to nothing.
--
-- The data is what conversations.c publishes: {"id", "conversation_id",
-- "direction", "status"}. Received texts are announced by the inbound
-- routing, as on SQLite.
CREATE FUNCTION od_message_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	eid BIGINT;
BEGIN
	INSERT INTO events (type, data, created_at)
	VALUES ('message', json_build_object('id', NEW.id,
	    'conversation_id', NEW.conversation_id, 'direction', NEW.direction,
	    'status', NEW.status)::text, NEW.updated_at)
	RETURNING id INTO eid;
	PERFORM pg_notify('od_events', eid::text);
	RETURN NULL;
END
$$;

CREATE TRIGGER messages_conversation_new AFTER INSERT ON messages
	FOR EACH ROW
	WHEN (NEW.conversation_id IS NOT NULL AND NEW.direction = 'out')
	EXECUTE FUNCTION od_message_event();

CREATE TRIGGER messages_conversation_status AFTER UPDATE OF status
	ON messages FOR EACH ROW
	WHEN (NEW.conversation_id IS NOT NULL AND NEW.direction = 'out'
	    AND NEW.status IS DISTINCT FROM OLD.status)
	EXECUTE FUNCTION od_message_event();
