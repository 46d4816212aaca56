-- POST /api/v1/orders/ as the bench customers, in turn.
-- Script arguments: a nonce (unique per wrk run, so the Idempotency-Keys of a
-- warm-up and of the measured run never meet) and the order's shape: "demo"
-- (3 distinct random demo products) or "many" (one line per product of the
-- 100 bench products). Quantity 1 each.
expected_status = 201
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local nonce, shape, sent = "x", "demo", 0

function init(args)
  nonce, shape = args[1] or tostring(os.time()), args[2] or "demo"
  seed_random()
end

local function distinct(list, n)
  local chosen, seen = {}, {}
  while #chosen < n do
    local id = list[math.random(#list)]
    if not seen[id] then
      seen[id] = true
      chosen[#chosen + 1] = id
    end
  end
  return chosen
end

local function body()
  local ids = shape == "many" and bench.many_products or distinct(bench.demo_products, 3)
  local items = {}
  for i, id in ipairs(ids) do
    items[i] = string.format('{"product_id": %d, "quantity": 1}', id)
  end
  return '{"items": [' .. table.concat(items, ", ") .. "]}"
end

function request()
  sent = sent + 1
  -- Random users, so that 64 of them share the per-user throttle's budget.
  local token = bench.customer_tokens[math.random(#bench.customer_tokens)]
  return wrk.format("POST", "/api/v1/orders/", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("bench-%s-%d-%d", nonce, thread_id, sent),
  }, body())
end
