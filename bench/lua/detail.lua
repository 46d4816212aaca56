-- GET /api/v1/orders/<id>/ as staff, over a random sample of existing orders.
expected_status = 200
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function init(args)
  seed_random()
  wrk.headers["Authorization"] = "Bearer " .. bench.staff_token
end

function request()
  local id = bench.order_ids[math.random(#bench.order_ids)]
  return wrk.format("GET", "/api/v1/orders/" .. id .. "/")
end
