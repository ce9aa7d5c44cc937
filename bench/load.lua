-- One operation of the queue's REST API per request, for wrk (bench/c_load.py runs it):
--
--   MQ_OP=add MQ_ROOM=bench MQ_TAG=x wrk -t1 -c20 -d4s -s bench/load.lua http://127.0.0.1:8000
--
-- MQ_OP: add (a new id each), vote (anonymous upvotes among MQ_TARGETS prefilled tracks
-- <tag>-v<n>), vote_voter (a new voter each: one ballot apiece), play_next, remove
-- (prefilled tracks <tag>-p<n>, in order), queue (the first 25), metadata, mixed (a
-- party: mostly votes and reads), floor (GET /).
-- done() prints one JSON line: requests, seconds, non-2xx answers, socket errors and the
-- latency percentiles.

local op = os.getenv("MQ_OP") or "queue"
local room = "/rooms/" .. (os.getenv("MQ_ROOM") or "bench")
-- MQ_ROOMS=N spreads the requests over N rooms, <MQ_ROOM>-0 .. <MQ_ROOM>-(N-1), in turn
local rooms = tonumber(os.getenv("MQ_ROOMS") or "0")
local tag = os.getenv("MQ_TAG") or "w"
local targets = tonumber(os.getenv("MQ_TARGETS") or "10")
local text = string.rep("T", 20)
local json = {["Content-Type"] = "application/json"}
local n = 0
-- mixed: what a party looks like, mostly votes and reads (9 votes, 4 queue reads, 3 adds,
-- 2 metadata reads and 2 plays in every 20 requests)
local MIX = {"vote", "queue", "vote", "add", "vote", "metadata", "vote", "queue", "vote",
             "play_next", "vote", "add", "vote", "queue", "vote", "metadata", "vote", "add",
             "queue", "play_next"}

function request()
  n = n + 1
  if rooms > 0 then room = "/rooms/" .. (os.getenv("MQ_ROOM") or "bench") .. "-" .. (n % rooms) end
  local op = op
  if op == "mixed" then op = MIX[n % #MIX + 1] end
  if op == "add" then
    return wrk.format("POST", room .. "/add_track", json, string.format(
      '{"id":"%s-a%d","title":"%s","artist":"%s","duration":180}', tag, n, text, text))
  elseif op == "vote" then
    return wrk.format("POST", room .. "/vote?id=" .. tag .. "-v" .. (n % targets))
  elseif op == "vote_voter" then
    return wrk.format("POST", room .. "/vote?id=" .. tag .. "-v" .. (n % targets)
                      .. "&voter=" .. tag .. n)
  elseif op == "play_next" then
    return wrk.format("POST", room .. "/play_next")
  elseif op == "remove" then
    return wrk.format("POST", room .. "/remove_track", json,
                      string.format('{"id":"%s-p%d"}', tag, n - 1))
  elseif op == "queue" then
    return wrk.format("GET", room .. "/queue?limit=25")
  elseif op == "metadata" then
    return wrk.format("GET", room .. "/metadata/" .. tag .. "-v" .. (n % targets))
  end
  return wrk.format("GET", "/")
end

-- mixed only: votes and reads of a track a concurrent play_next just took answer 404, a
-- party's normal answer; each thread counts them ("gone"), done() adds them up
local threads = {}
function setup(thread) table.insert(threads, thread) end
if op == "mixed" then
  gone = 0
  function response(status, headers, body)
    if status == 404 then gone = gone + 1 end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local missing = 0
  for _, thread in ipairs(threads) do missing = missing + (thread:get("gone") or 0) end
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"non_2xx":%d,"gone":%d,"socket_errors":%d,'
    .. '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f}\n',
    summary.requests, summary.duration / 1e6, e.status, missing,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
