-- bench/twilio.lua - wrk script for bench/run's raw limit of the SMS
-- figure: POSTs one Twilio Messages.json request, the very form body and
-- Basic credentials the daemon's Twilio adapter sent to tests/fakes/
-- fakeprov in the same run, as fast as the fake answers. The URL given
-- to wrk is the request's path on the fake.
--
-- The body and the Authorization header come from $OD_BENCH_TW_BODY and
-- $OD_BENCH_TW_AUTH (never the command line, where ps(1) shows them).
--
-- done() prints one line that bench/run parses:
--   twilio.lua: responses=N status_201=N other=N seconds=S rate_201=R

local body = os.getenv("OD_BENCH_TW_BODY")
local auth = os.getenv("OD_BENCH_TW_AUTH")
if body == nil or body == "" or auth == nil or auth == "" then
	error("twilio.lua: set OD_BENCH_TW_BODY and OD_BENCH_TW_AUTH")
end

local threads = {}

function setup(thread)
	table.insert(threads, thread)
end

function init(args)
	created = 0
	other = 0
	wrk.method = "POST"
	wrk.body = body
	wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
	wrk.headers["Authorization"] = auth
end

function response(status, headers, resp_body)
	if status == 201 then
		created = created + 1
	else
		other = other + 1
	end
end

function done(summary, latency, requests)
	local total_created, total_other = 0, 0
	for _, thread in ipairs(threads) do
		total_created = total_created + thread:get("created")
		total_other = total_other + thread:get("other")
	end
	local seconds = summary.duration / 1e6
	io.write(string.format(
		"twilio.lua: responses=%d status_201=%d other=%d " ..
		"seconds=%.3f rate_201=%.1f\n",
		total_created + total_other, total_created, total_other,
		seconds, total_created / seconds))
end
