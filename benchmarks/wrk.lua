-- wrk script for `make bench` (benchmarks/http_load.py runs it; see benchmarks/README.md).
--
-- Environment:
--   BENCH_METHOD        GET or POST
--   BENCH_BODY          a file holding the request body (POST), or empty
--   BENCH_CONTENT_TYPE  the body's Content-Type
--   BENCH_RUN           a number unique to this wrk run
--   BENCH_RATE          optional: requests per second to offer (Poisson arrivals over the connections);
--                       empty or unset, each connection sends its next request as soon as it has an answer
--   BENCH_HISTOGRAM     optional: "1" adds every latency the run saw, with its count, to the report
-- A body containing the marker @@N@@ gets a value unique to each request there ("<run>-<thread>-<n>"),
-- so every hook call is a different input and stores a card of its own (card ids are content hashes).
-- At the end one line "BENCH_JSON {...}" reports the counts and latency percentiles (microseconds).

local marker = "@@N@@"
local run = os.getenv("BENCH_RUN") or "0"
local head, tail = nil, nil

wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body_file = os.getenv("BENCH_BODY") or ""
if body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  local body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE") or "application/json"
  local s, e = string.find(body, marker, 1, true)
  if s then
    head, tail = string.sub(body, 1, s - 1), string.sub(body, e + 1)
  else
    wrk.body = body
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

local rate = tonumber(os.getenv("BENCH_RATE") or "")
if rate and rate > 0 then
  -- wrk is closed-loop: a connection sends again as soon as it is answered. delay() (milliseconds, asked
  -- before each request) holds each request until its arrival time on a Poisson schedule of `rate` per
  -- second, one schedule for the whole thread. A request whose time has passed (every connection was
  -- waiting for an answer) goes as soon as a connection is free; more than MAX_LAG_MS behind (a stall of
  -- the shared machine) the schedule restarts from now instead of sending a burst, so the achieved rate
  -- (reported) can fall below the offered one. Latency counts from the send, not the arrival time.
  -- LuaJIT's ffi gives a monotonic clock; wrk's Lua has none finer than os.time's seconds.
  local MAX_LAG_MS = 100
  local ffi = require("ffi")
  ffi.cdef([[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clock, bench_timespec *tp);
  ]])
  local CLOCK_MONOTONIC = 1
  local ts = ffi.new("bench_timespec")
  local function now_ms()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
  end
  local due = nil
  math.randomseed(tonumber(run) or 0)

  function delay()
    local now = now_ms()
    if due == nil or due < now - MAX_LAG_MS then
      due = now
    end
    local wait = math.max(0, due - now)
    due = due - math.log(1 - math.random()) * 1000 / rate -- exponential gaps: Poisson arrivals
    return math.floor(wait + 0.5)
  end
end

sent = 0
statuses = {}
cards = 0

if head then
  -- defined only when needed: without request(), wrk sends one prebuilt request and does less work
  function request()
    sent = sent + 1
    return wrk.format(nil, nil, nil, head .. run .. "-" .. tid .. "-" .. sent .. tail)
  end
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if status == 200 and string.find(body, '"indicator"', 1, true) then
    cards = cards + 1
  end
end

local function json_object(t)
  local parts = {}
  for k, v in pairs(t) do
    table.insert(parts, string.format('"%s":%s', k, tostring(v)))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local all_statuses, all_cards = {}, 0
  for _, thread in ipairs(threads) do
    for k, v in pairs(thread:get("statuses")) do
      all_statuses[k] = (all_statuses[k] or 0) + v
    end
    all_cards = all_cards + thread:get("cards")
  end
  local e = summary.errors
  local out = {
    requests = summary.requests,
    duration_us = summary.duration,
    errors_connect = e.connect,
    errors_read = e.read,
    errors_write = e.write,
    errors_status = e.status,
    errors_timeout = e.timeout,
    cards = all_cards,
    p50_us = latency:percentile(50),
    p95_us = latency:percentile(95),
    p99_us = latency:percentile(99),
    max_us = latency.max,
    mean_us = latency.mean,
    statuses = json_object(all_statuses),
  }
  if os.getenv("BENCH_HISTOGRAM") == "1" then
    -- latency(i): the i-th distinct latency in microseconds and how many requests took it (wrk's stats)
    local pairs_us = {}
    for i = 1, #latency do
      local us, count = latency(i)
      table.insert(pairs_us, string.format("[%d,%d]", us, count))
    end
    out.histogram_us = "[" .. table.concat(pairs_us, ",") .. "]"
  end
  io.write("BENCH_JSON " .. json_object(out) .. "\n")
end
