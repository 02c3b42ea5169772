-- bench/inbound.lua - wrk script for bench/kannel's outreachd MO row:
-- replays the signed Twilio inbound webhooks bench/twilio_inbound.py
-- wrote, each once.
--
-- $OD_BENCH_INBOUND names the prefix of the files: thread N of wrk reads
-- PREFIX.N (one request a line: signature, TAB, form body) and POSTs
-- them in order to the URL given to wrk (/webhooks/NAME/inbound). Once a
-- thread's lines are all sent, each of its connections sends the start
-- of a request whose header never ends, and so waits quietly: answered
-- requests (/healthz) would keep the daemon busy while the other
-- thread's last webhooks are measured, and count in their CPU. When the
-- last answer came, the thread writes $OD_BENCH_DONE.done.N, and
-- bench/kannel stops wrk once every thread did (wrk's own duration runs
-- to -d or SIGINT): the files' modification times say when the last
-- webhook was answered.
--
-- An inbound answer is told by its body (TwiML "<Response>"). wrk calls
-- the first thread's request() once more, to check the script, and
-- throws that request away: that thread starts with its first line twice
-- (a retried webhook would be harmless anyway: outreachd de-duplicates
-- by MessageSid).
--
-- done() prints one line that bench/kannel parses:
--   inbound.lua: answered=N status_200=N other=N seconds=S rate_200=R
-- (seconds and rate are wrk's, up to the SIGINT: bench/kannel uses the
-- done files' times instead)

local prefix = os.getenv("OD_BENCH_INBOUND")
if prefix == nil or prefix == "" then
	error("inbound.lua: set OD_BENCH_INBOUND to the request files' prefix")
end

local threads = {}
local thread_count = 0

function setup(thread)
	thread_count = thread_count + 1
	thread:set("tid", thread_count)
	table.insert(threads, thread)
end

function init(args)
	sigs, bodies = {}, {}
	local f = assert(io.open(prefix .. "." .. tid, "r"))
	for line in f:lines() do
		local tab = line:find("\t", 1, true)
		table.insert(sigs, line:sub(1, tab - 1))
		table.insert(bodies, line:sub(tab + 1))
	end
	f:close()
	total = #bodies
	if tid == 1 and total > 0 then
		table.insert(sigs, 1, sigs[1])
		table.insert(bodies, 1, bodies[1])
	end
	nexti = 1
	ok = 0
	other = 0
	statuses = {}
	finished = false
	path = wrk.path
	-- no blank line after the headers: never answered
	idle_req = "GET /healthz HTTP/1.1\r\nHost: idle\r\n"
end

function request()
	local i = nexti
	if i > #bodies then
		return idle_req
	end
	nexti = i + 1
	return wrk.format("POST", path, {
		["Content-Type"] = "application/x-www-form-urlencoded",
		["X-Twilio-Signature"] = sigs[i],
	}, bodies[i])
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
	if status == 200 and body ~= nil and body:find("<Response", 1, true) then
		ok = ok + 1
	elseif status ~= 200 then
		other = other + 1
		statuses[status] = (statuses[status] or 0) + 1
	end
	if not finished and ok + other >= total then
		finished = true
		mark_done()
	end
end

function done(summary, latency, requests)
	local t_ok, t_other, by = 0, 0, {}
	for _, thread in ipairs(threads) do
		t_ok = t_ok + thread:get("ok")
		t_other = t_other + thread:get("other")
		local st = thread:get("statuses")
		for k, v in pairs(st) do
			by[k] = (by[k] or 0) + v
		end
	end
	local seconds = summary.duration / 1e6
	io.write(string.format(
		"inbound.lua: answered=%d status_200=%d other=%d " ..
		"seconds=%.3f rate_200=%.1f\n",
		t_ok + t_other, t_ok, t_other, seconds, t_ok / seconds))
	for k, v in pairs(by) do
		io.write(string.format("inbound.lua: status %s: %d\n", k, v))
	end
end
