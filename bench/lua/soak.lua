-- Mixed traffic for the soak test (bench/soak.py): customers placing, replaying,
-- reading and cancelling orders, staff shipping and delivering them and
-- adjusting stock, anyone reading the catalogue, all at once.
--
-- wrk gives every thread its own Lua state and does not tell response() which
-- request it answers. So every request carries an X-Request-ID naming it (the
-- app echoes the header), and the thread keeps what it needs to judge the
-- answer under that id until the answer comes. The same id is in the server's
-- log lines, which is how bench/soak.py finds the traceback of a 5xx.
--
-- Each thread writes its counts to $SOAK_DIR/thread-N.json every few seconds
-- (bench/soak.py prints progress from them); done() prints the totals of all
-- threads as one line, "SOAK_RESULT {json}". What done() reads from a thread
-- is kept flat (wrk 4.1 crashes copying a table that holds tables): counts
-- under "scenario|status" keys, samples as JSON strings.
--
-- Script arguments: a nonce (unique per run: Idempotency-Keys and request ids
-- never meet an earlier run's), the number of wrk threads (each thread ships
-- only the orders whose id falls to it, so two threads seldom race on one),
-- and the mean number of units a restock adds.

data = dofile(os.getenv("SOAK_DATA"))
local out_dir = os.getenv("SOAK_DIR")

-- Share of each scenario, in requests out of the sum of the weights. Placing
-- orders dominates, as in a shop; restocks are sized so that supply runs a
-- little behind demand and 409 insufficient_stock happens, but not always.
local MIX = {
  {"create", 30}, {"replay", 4}, {"key_reuse", 2},
  {"list_own", 9}, {"detail_own", 9}, {"detail_other", 3}, {"cancel", 6},
  {"staff_list", 5}, {"ship", 8}, {"deliver", 5},
  {"products", 7}, {"products_anon", 2}, {"me", 5},
  {"restock", 3}, {"damage", 2},
}

-- The answers each scenario may get. `true`: any body; a string: a 409/422/404
-- must carry that error code, so that a 409 for the wrong reason is caught.
EXPECTED = {
  create = {[201] = true, [409] = "insufficient_stock"},
  -- A refused request is not remembered, so its replay runs afresh.
  replay = {[201] = true, [409] = "insufficient_stock"},
  key_reuse = {[422] = "idempotency_key_reused"},
  list_own = {[200] = true},
  detail_own = {[200] = true},
  detail_other = {[404] = "not_found"},
  -- The worker may have moved the order to processing first.
  cancel = {[200] = true, [409] = "invalid_transition"},
  staff_list = {[200] = true},
  ship = {[200] = true, [409] = "invalid_transition"},
  deliver = {[200] = true, [409] = "invalid_transition"},
  products = {[200] = true},
  products_anon = {[200] = true},
  me = {[200] = true},
  restock = {[201] = true},
  -- Damage may not leave less on hand than is reserved.
  damage = {[201] = true, [409] = "insufficient_stock"},
}

local OWN_KEPT, KEYS_KEPT, QUEUE_KEPT, SAMPLES_KEPT = 400, 200, 300, 20
local FLUSH_SECONDS = 3

-- Read by done() through thread:get, so globals of the thread's state.
counts = {}       -- "scenario|status" -> n
checks = {        -- what the client can verify beyond the status
  new_orders = 0,         -- 201s that made an order (not replays)
  replays = 0,            -- 201s with Idempotent-Replayed: true
  replay_mismatch = 0,    -- a replay that answered another order, or made one
  wrong_code = 0,         -- an expected status with the wrong error code
  unexpected = 0,         -- a status the scenario does not allow
  server_errors = 0,      -- 5xx
  unknown_id = 0,         -- an answer without one of our request ids
}
samples = {}      -- the first unexpected answers (JSON), for the report

local threads = {}
local nonce, nthreads, restock_mean = "x", 1, 40
local seq, last_flush = 0, 0
local inflight = {}           -- request id -> what was asked
local own = {}                -- ring of {c = customer index, id = order id}
local own_next = 0
local keys = {}               -- ring of {c, key, body, id (nil: the first was refused)}
local keys_next = 0
local to_ship, to_deliver = {}, {}  -- order ids, oldest first
local queued = {}                   -- order id -> true while in a queue
local total_weight = 0
for _, entry in ipairs(MIX) do total_weight = total_weight + entry[2] end

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

function init(args)
  nonce = args[1] or tostring(os.time())
  nthreads = tonumber(args[2]) or 1
  restock_mean = tonumber(args[3]) or restock_mean
  -- Every Lua state starts with the same generator.
  math.randomseed(os.time() * 100 + (thread_id or 0) * 7919)
  for _ = 1, 10 do math.random() end
end

-- --- small helpers ------------------------------------------------------------

local function json(v)
  local t = type(v)
  if t == "table" then
    local parts = {}
    if v[1] ~= nil then
      for _, item in ipairs(v) do parts[#parts + 1] = json(item) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    for k, item in pairs(v) do parts[#parts + 1] = json(tostring(k)) .. ":" .. json(item) end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif t == "number" then
    return string.format("%d", v)
  elseif t == "boolean" then
    return tostring(v)
  elseif v == nil then
    return "null"
  end
  return '"' .. string.gsub(tostring(v), '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end) .. '"'
end

local function pick(list) return list[math.random(#list)] end

local function customer() return math.random(#data.customer_tokens) end

local function bearer(token)
  return {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
end

local function header(headers, name)
  local value = headers[name]
  if value then return value end
  name = string.lower(name)
  for k, v in pairs(headers) do
    if string.lower(k) == name then return v end
  end
end

local function remember_own(c, id)
  own_next = own_next % OWN_KEPT + 1
  own[own_next] = {c = c, id = id}
end

local function enqueue(queue, id)
  if not queued[id] and #queue < QUEUE_KEPT then
    queued[id] = true
    queue[#queue + 1] = id
  end
end

local function dequeue(queue)
  local id = table.remove(queue, 1)
  if id then queued[id] = nil end
  return id
end

-- An order body: 1-3 distinct active products, 1-3 units each.
local function order_body()
  local lines, seen = {}, {}
  for _ = 1, math.random(3) do
    local id = pick(data.products)
    if not seen[id] then
      seen[id] = true
      lines[#lines + 1] = string.format('{"product_id":%d,"quantity":%d}', id, math.random(3))
    end
  end
  return '{"items":[' .. table.concat(lines, ",") .. '],"shipping_address":"1 Soak Street"}'
end

-- --- scenarios: each returns (method, path, headers, body, what to remember) ----

local build = {}

function build.create()
  local c = customer()
  seq = seq + 1
  local key = string.format("soak-%s-%d-%d", nonce, thread_id, seq)
  local body = order_body()
  local headers = bearer(data.customer_tokens[c])
  headers["Idempotency-Key"] = key
  return "POST", "/api/v1/orders/", headers, body, {name = "create", c = c, key = key}
end

function build.replay()
  -- Not a key whose replay is still in flight: two answers for one key may
  -- come back in either order, and only the first may make an order.
  local entry
  for _ = 1, 5 do
    local candidate = pick(keys)
    if not candidate.busy then entry = candidate break end
  end
  if not entry then return build.create() end
  entry.busy = true
  local headers = bearer(data.customer_tokens[entry.c])
  headers["Idempotency-Key"] = entry.key
  return "POST", "/api/v1/orders/", headers, entry.body, {name = "replay", c = entry.c, entry = entry}
end

function build.key_reuse()
  -- Only keys whose first request made an order: a refused one is forgotten.
  local entry
  for _ = 1, 5 do
    local candidate = pick(keys)
    if candidate.id then entry = candidate break end
  end
  if not entry then return build.create() end
  local headers = bearer(data.customer_tokens[entry.c])
  headers["Idempotency-Key"] = entry.key
  local body = string.gsub(entry.body, "}$", ',"notes":"a different body"}')
  return "POST", "/api/v1/orders/", headers, body, {name = "key_reuse"}
end

function build.list_own()
  local path = "/api/v1/orders/?page_size=20"
  if math.random(4) == 1 then path = path .. "&status=pending" end
  return "GET", path, bearer(data.customer_tokens[customer()]), nil, {name = "list_own"}
end

function build.detail_own()
  local o = pick(own)
  local headers = bearer(data.customer_tokens[o.c])
  return "GET", "/api/v1/orders/" .. o.id .. "/", headers, nil, {name = "detail_own"}
end

function build.detail_other()
  -- An order of the seeded customers, or one of ours asked for by someone else.
  local id, c = pick(data.foreign_orders), customer()
  if math.random(2) == 1 then
    local o = pick(own)
    if o.c ~= c then id = o.id end
  end
  local headers = bearer(data.customer_tokens[c])
  return "GET", "/api/v1/orders/" .. id .. "/", headers, nil, {name = "detail_other"}
end

function build.cancel()
  local o = pick(own)
  local headers = bearer(data.customer_tokens[o.c])
  if math.random(4) == 1 then
    return "DELETE", "/api/v1/orders/" .. o.id .. "/", headers, nil, {name = "cancel"}
  end
  local body = '{"reason":"soak"}'
  return "POST", "/api/v1/orders/" .. o.id .. "/cancel/", headers, body, {name = "cancel"}
end

function build.staff_list()
  local ordering = math.random(2) == 1 and "created_at" or "-created_at"
  local path = "/api/v1/orders/?status=processing&page_size=50&ordering=" .. ordering
  return "GET", path, bearer(data.staff_token), nil, {name = "staff_list"}
end

local function move(queue, status, name)
  local id = dequeue(queue)
  if not id then return build.staff_list() end
  local body = string.format('{"status":"%s"}', status)
  local memo = {name = name, id = id}
  return "PATCH", "/api/v1/orders/" .. id .. "/", bearer(data.staff_token), body, memo
end

function build.ship() return move(to_ship, "shipped", "ship") end

function build.deliver() return move(to_deliver, "delivered", "deliver") end

function build.products()
  local path = "/api/v1/products/?page_size=20"
  if math.random(3) == 1 then path = path .. "&in_stock=true" end
  return "GET", path, bearer(data.customer_tokens[customer()]), nil, {name = "products"}
end

function build.products_anon()
  return "GET", "/api/v1/products/", {}, nil, {name = "products_anon"}
end

function build.me()
  local token = math.random(10) == 1 and data.staff_token or data.customer_tokens[customer()]
  return "GET", "/api/v1/auth/me/", bearer(token), nil, {name = "me"}
end

local function adjust(delta, reason, name)
  local body = string.format('{"delta":%d,"reason":"%s","note":"soak"}', delta, reason)
  local path = "/api/v1/products/" .. pick(data.products) .. "/stock-adjustments/"
  return "POST", path, bearer(data.staff_token), body, {name = name}
end

function build.restock()
  local low, high = math.floor(restock_mean / 2), math.floor(restock_mean * 3 / 2)
  return adjust(math.random(low, high), "restock", "restock")
end

function build.damage() return adjust(-math.random(3), "damage", "damage") end

-- Scenarios that need an order of our own (or a used key) start with a create.
local NEEDS_OWN = {detail_own = true, cancel = true, detail_other = true}
local NEEDS_KEY = {replay = true, key_reuse = true}

local function choose()
  local r = math.random(total_weight)
  for _, entry in ipairs(MIX) do
    r = r - entry[2]
    if r <= 0 then
      local name = entry[1]
      if (NEEDS_OWN[name] and #own == 0) or (NEEDS_KEY[name] and #keys == 0) then
        return "create"
      end
      return name
    end
  end
end

function request()
  local method, path, headers, body, memo = build[choose()]()
  seq = seq + 1
  -- The scenario in the id lets bench/soak.py time each one from the access
  -- log (ids allow letters, digits and ._:- only).
  local id = string.format("soak-%s-%s-%d-%d", nonce, memo.name:gsub("_", "."), thread_id, seq)
  headers["X-Request-ID"] = id
  -- memo.name is what was sent: a builder may fall back to another scenario.
  memo.method, memo.path, memo.body = method, path, body
  inflight[id] = memo
  return wrk.format(method, path, headers, body)
end

-- --- answers --------------------------------------------------------------------

local function sample(memo, id, status, body, why)
  if #samples < SAMPLES_KEPT then
    samples[#samples + 1] = json({
      why = why, scenario = memo.name or "?", request_id = id or "", status = status,
      request = (memo.method or "?") .. " " .. (memo.path or "?"),
      request_body = string.sub(memo.body or "", 1, 300),
      response_body = string.sub(body or "", 1, 500),
    })
  end
end

local function judge(memo, id, status, headers, body)
  local allowed = (EXPECTED[memo.name] or {})[status]
  if status >= 500 then
    checks.server_errors = checks.server_errors + 1
    sample(memo, id, status, body, "5xx")
  elseif not allowed then
    checks.unexpected = checks.unexpected + 1
    sample(memo, id, status, body, "unexpected status")
  elseif allowed ~= true and not string.find(body or "", '"code":"' .. allowed .. '"', 1, true) then
    checks.wrong_code = checks.wrong_code + 1
    sample(memo, id, status, body, "wrong error code")
  end
end

local function created(memo, headers, body)
  local order_id = tonumber(string.match(body or "", '^{"id":%s*(%d+)'))
  local replayed = header(headers, "Idempotent-Replayed") == "true"
  local entry = memo.entry
  if replayed then
    checks.replays = checks.replays + 1
    -- A replay must answer the order its key made, and only a key that made one.
    if not entry or not entry.id or entry.id ~= order_id then
      checks.replay_mismatch = checks.replay_mismatch + 1
      return false
    end
    return true
  end
  checks.new_orders = checks.new_orders + 1
  if entry and entry.id then
    -- The key had made an order already: this is a second one.
    checks.replay_mismatch = checks.replay_mismatch + 1
    return false
  end
  if order_id then
    remember_own(memo.c, order_id)
    if entry then
      entry.id = order_id
    else
      keys_next = keys_next % KEYS_KEPT + 1
      keys[keys_next] = {c = memo.c, key = memo.key, body = memo.body, id = order_id}
    end
  end
  return true
end

local function flush()
  local now = os.time()
  if now - last_flush < FLUSH_SECONDS then return end
  last_flush = now
  local path = string.format("%s/thread-%d.json", out_dir, thread_id)
  local file = io.open(path .. ".tmp", "w")
  if file then
    file:write(json({counts = counts, checks = checks}))
    file:close()
    os.rename(path .. ".tmp", path)  -- readers never see half a file
  end
end

function response(status, headers, body)
  local id = header(headers, "X-Request-ID")
  local memo = id and inflight[id]
  if memo then
    inflight[id] = nil
    if memo.entry then memo.entry.busy = nil end
  else
    checks.unknown_id = checks.unknown_id + 1
    memo = {name = "unknown"}
  end
  local key = memo.name .. "|" .. status
  counts[key] = (counts[key] or 0) + 1

  judge(memo, id, status, headers, body)
  if status == 201 and (memo.name == "create" or memo.name == "replay") then
    if not created(memo, headers, body) then sample(memo, id, status, body, "replay mismatch") end
  elseif status == 409 and memo.name == "create" then
    -- Refused: remembered without an order, so that a replay runs it again.
    keys_next = keys_next % KEYS_KEPT + 1
    keys[keys_next] = {c = memo.c, key = memo.key, body = memo.body}
  elseif status == 200 and memo.name == "staff_list" then
    for order_id in string.gmatch(body or "", '{"id":%s*(%d+),%s*"customer"') do
      order_id = tonumber(order_id)
      if order_id % nthreads == thread_id - 1 then enqueue(to_ship, order_id) end
    end
  elseif status == 200 and memo.name == "ship" then
    enqueue(to_deliver, memo.id)
  end
  flush()
end

-- --- the end (main state) ---------------------------------------------------------

function done(summary, latency, requests)
  local total_counts, total_checks, all_samples = {}, {}, {}
  for _, thread in ipairs(threads) do
    for key, n in pairs(thread:get("counts") or {}) do
      total_counts[key] = (total_counts[key] or 0) + n
    end
    for name, n in pairs(thread:get("checks") or {}) do
      total_checks[name] = (total_checks[name] or 0) + n
    end
    for _, s in ipairs(thread:get("samples") or {}) do all_samples[#all_samples + 1] = s end
  end
  -- Samples are JSON already: spliced in as they are.
  local samples_json = "[]"
  if #all_samples > 0 then samples_json = "[" .. table.concat(all_samples, ",") .. "]" end
  local e = summary.errors
  io.write("SOAK_RESULT " .. json({
    requests = summary.requests,
    duration_us = summary.duration,
    latency_us = {
      p50 = latency:percentile(50), p90 = latency:percentile(90),
      p99 = latency:percentile(99), max = latency.max,
    },
    socket_errors = {
      connect = e.connect, read = e.read, write = e.write, timeout = e.timeout,
    },
    counts = total_counts,
    checks = total_checks,
  }):sub(1, -2) .. ',"samples":' .. samples_json .. "}\n")
end
