-- Catalogue searches for wrk (bench/catalogue.py runs it): MQ_QUERIES names a file of
-- URL-encoded queries, one a line, sent in turn, each as GET /catalogue/search?q=...
--
--   MQ_QUERIES=bench/out/queries.txt wrk -t1 -c20 -d5s -s bench/search.lua http://127.0.0.1:8000
--
-- done() prints one JSON line, as bench/load.lua's does.

local queries = {}
for line in io.lines(os.getenv("MQ_QUERIES")) do queries[#queries + 1] = line end
local n = 0

function request()
  n = n + 1
  return wrk.format("GET", "/catalogue/search?limit=20&q=" .. queries[(n - 1) % #queries + 1])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"non_2xx":%d,"gone":0,"socket_errors":%d,'
    .. '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f}\n',
    summary.requests, summary.duration / 1e6, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
