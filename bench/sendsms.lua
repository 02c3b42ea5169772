-- bench/sendsms.lua - wrk script for bench/kannel's Kannel MT rows: GET
-- /cgi-bin/sendsms on Kannel's smsbox, one SMS per request, each to its
-- own number with its own text, an exact count per thread.
--
-- $OD_BENCH_KANNEL_USER and $OD_BENCH_KANNEL_PASS are the sendsms-user's
-- credentials, $OD_BENCH_MAX_PER_THREAD the messages each wrk thread
-- sends, $OD_BENCH_SMSC the smsc-id to route them to (optional). Once a
-- thread sent its share, its connections GET /bench-idle (smsbox answers
-- 404: cheap, not counted); when the last answer came, the thread
-- writes $OD_BENCH_DONE.done.N (its modification time is when), and
-- bench/kannel stops wrk once every thread did.
-- wrk calls the first thread's request() once more, to check the script,
-- and throws that request away: that thread's count starts one lower.
--
-- done() prints one line that bench/kannel parses:
--   sendsms.lua: answered=N status_202=N other=N seconds=S rate_202=R
-- (seconds and rate are wrk's, up to the SIGINT: bench/kannel uses the
-- done files' times instead)

local user = os.getenv("OD_BENCH_KANNEL_USER")
local pass = os.getenv("OD_BENCH_KANNEL_PASS")
local cap = tonumber(os.getenv("OD_BENCH_MAX_PER_THREAD") or "")
local smsc = os.getenv("OD_BENCH_SMSC") or ""
if user == nil or pass == nil or cap == nil then
	error("sendsms.lua: set OD_BENCH_KANNEL_USER, OD_BENCH_KANNEL_PASS " ..
	    "and OD_BENCH_MAX_PER_THREAD")
end

local threads = {}
local thread_count = 0

function setup(thread)
	thread_count = thread_count + 1
	thread:set("tid", thread_count)
	table.insert(threads, thread)
end

function init(args)
	issued = 0
	ok = 0
	other = 0
	statuses = {}
	finished = false
	first = (tid == 1) and 0 or 1 -- the thrown-away check request
	idle_req = wrk.format("GET", "/bench-idle", {}, nil)
	extra = ""
	if smsc ~= "" then
		extra = "&smsc=" .. smsc
	end
end

function request()
	if issued >= cap + (1 - first) then
		return idle_req
	end
	issued = issued + 1
	local n = (tid - 1) * 1000000 + issued
	return wrk.format("GET", string.format(
	    "/cgi-bin/sendsms?username=%s&password=%s&from=15550100002" ..
	    "&to=1202%07d&text=Bench+message+%d+of+thread+%d%s",
	    user, pass, n, issued, tid, extra), {}, nil)
end

-- Writes PREFIX.done.TID ($OD_BENCH_DONE) once this thread's last answer
-- came: its modification time is when; wrk runs on (its duration ends
-- only at -d or SIGINT, which bench/kannel sends once every thread is
-- done).
function mark_done()
	local dir = os.getenv("OD_BENCH_DONE")
	if dir ~= nil and dir ~= "" then
		local f = io.open(dir .. ".done." .. tid, "w")
		if f ~= nil then
			f:close()
		end
	end
end

function response(status, headers, body)
	if status == 202 then
		ok = ok + 1
	elseif status ~= 404 then
		other = other + 1
		statuses[status] = (statuses[status] or 0) + 1
	end
	if not finished and ok + other >= cap then
		finished = true
		mark_done()
	end
end

function done(summary, latency, requests)
	local t_ok, t_other, by = 0, 0, {}
	for _, thread in ipairs(threads) do
		t_ok = t_ok + thread:get("ok")
		t_other = t_other + thread:get("other")
		for k, v in pairs(thread:get("statuses")) do
			by[k] = (by[k] or 0) + v
		end
	end
	local seconds = summary.duration / 1e6
	io.write(string.format(
		"sendsms.lua: answered=%d status_202=%d other=%d " ..
		"seconds=%.3f rate_202=%.1f\n",
		t_ok + t_other, t_ok, t_other, seconds, t_ok / seconds))
	for k, v in pairs(by) do
		io.write(string.format("sendsms.lua: status %s: %d\n", k, v))
	end
end
