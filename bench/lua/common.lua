-- Shared by the scenario scripts (each does `dofile` on this file first).
--
-- wrk gives every thread its own Lua state, plus one main state that runs
-- setup() and done(). So the status counts live in a global of each thread's
-- state, and done() collects them through the thread objects that setup()
-- kept. done() prints one line, "BENCH_RESULT {json}", that bench/run.py reads.
--
-- A scenario script sets `expected_status` (any other status counts as
-- unexpected) and may define init(args) and request().

bench = dofile(os.getenv("BENCH_DATA"))

status_counts = {}
first_unexpected = nil

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

-- Seeds this thread's generator: every Lua state starts with the same one.
function seed_random()
  math.randomseed(os.time() * 100 + (thread_id or 0) * 7919)
  for _ = 1, 10 do math.random() end
end

function response(status, headers, body)
  local key = tostring(status)
  status_counts[key] = (status_counts[key] or 0) + 1
  if status ~= expected_status and first_unexpected == nil then
    first_unexpected = key .. " " .. string.sub(body or "", 1, 300)
  end
end

local function json_string(s)
  s = string.gsub(s, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local statuses, sample = {}, nil
  for _, thread in ipairs(threads) do
    for key, n in pairs(thread:get("status_counts") or {}) do
      statuses[key] = (statuses[key] or 0) + n
    end
    sample = sample or thread:get("first_unexpected")
  end
  local unexpected, parts = 0, {}
  for key, n in pairs(statuses) do
    if tonumber(key) ~= expected_status then unexpected = unexpected + n end
    table.insert(parts, json_string(key) .. ": " .. n)
  end
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "seconds": %.3f, "rps": %.2f, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"statuses": {%s}, "unexpected": %d, "sample": %s, ' ..
    '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    table.concat(parts, ", "), unexpected, sample and json_string(sample) or "null",
    e.connect, e.read, e.write, e.timeout))
end
