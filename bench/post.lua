-- bench/post.lua - wrk script for bench/run: POST /api/v1/messages, one
-- SMS per request, as fast as the daemon answers.
--
-- Every request carries a new idempotency key (run id, thread id, counter),
-- so each 202 is one new durable message and none is a duplicate. The API
-- token comes from $OD_BENCH_TOKEN (never from the command line, where
-- ps(1) would show it); $OD_BENCH_RUN names the run. When
-- $OD_BENCH_NOT_BEFORE (unix seconds) is set, every message carries it as
-- not_before, so the daemon holds them all until wrk has stopped and the
-- backlog drains as one measurable batch.
--
-- For the SMS provider figure (bench/run step 5): $OD_BENCH_SENDER names
-- the [sender] every message goes to, and $OD_BENCH_MAX_PER_THREAD caps
-- the messages each wrk thread posts; after that a thread only GETs
-- /healthz (answered 200, counted as idle) until wrk's duration ends, so
-- a timed wrk run enqueues an exact count.
--
-- done() prints one line that bench/run parses:
--   post.lua: responses=N status_202=N non_202=N idle=N seconds=S rate_202=R
-- and, when some answer was not 202, one line per status:
--   post.lua: status 503: N

local token = os.getenv("OD_BENCH_TOKEN")
if token == nil or token == "" then
	error("post.lua: set OD_BENCH_TOKEN to the daemon's API token")
end
local run_id = os.getenv("OD_BENCH_RUN") or tostring(os.time())
local not_before = os.getenv("OD_BENCH_NOT_BEFORE")
local extra = ""
if not_before ~= nil and not_before ~= "" then
	extra = string.format(',"not_before":%d', tonumber(not_before))
end
local sender = os.getenv("OD_BENCH_SENDER")
if sender ~= nil and sender ~= "" then
	extra = extra .. string.format(',"sender":"%s"', sender)
end
local cap = tonumber(os.getenv("OD_BENCH_MAX_PER_THREAD") or "")

-- Main state only: the threads, to read their counters in done().
local threads = {}
local thread_count = 0

function setup(thread)
	thread_count = thread_count + 1
	thread:set("tid", thread_count)
	table.insert(threads, thread)
end

-- Per-thread state (each wrk thread has its own Lua state).
function init(args)
	counter = 0
	ok = 0
	bad = 0
	idle = 0
	statuses = {}
	-- wrk calls the first thread's request() once more, to check the
	-- script, and throws that request away: count it in that thread's cap
	my_cap = cap
	if cap ~= nil and tid == 1 then
		my_cap = cap + 1
	end
	wrk.method = "POST"
	wrk.headers["Content-Type"] = "application/json"
	wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
	if my_cap ~= nil and counter >= my_cap then
		return wrk.format("GET", "/healthz", {})
	end
	counter = counter + 1
	-- +1555 and 7 digits: a valid E.164 shape (11 digits).
	local body = string.format(
		'{"channel":"sms","to":"+1555%07d",' ..
		'"body":"bench message %d from thread %d",' ..
		'"idempotency_key":"bench-%s-%d-%d"%s}',
		counter % 10000000, counter, tid, run_id, tid, counter, extra)
	return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
	if status == 202 then
		ok = ok + 1
	elseif status == 200 and cap ~= nil then
		idle = idle + 1
	else
		bad = bad + 1
		statuses[status] = (statuses[status] or 0) + 1
	end
end

function done(summary, latency, requests)
	local total_ok, total_bad, total_idle, by_status = 0, 0, 0, {}
	for _, thread in ipairs(threads) do
		total_ok = total_ok + thread:get("ok")
		total_bad = total_bad + thread:get("bad")
		total_idle = total_idle + thread:get("idle")
		for status, n in pairs(thread:get("statuses")) do
			by_status[status] = (by_status[status] or 0) + n
		end
	end
	local seconds = summary.duration / 1e6
	io.write(string.format(
		"post.lua: responses=%d status_202=%d non_202=%d idle=%d " ..
		"seconds=%.3f rate_202=%.1f\n",
		total_ok + total_bad + total_idle, total_ok, total_bad,
		total_idle, seconds, total_ok / seconds))
	for status, n in pairs(by_status) do
		io.write(string.format("post.lua: status %d: %d\n", status, n))
	end
end
