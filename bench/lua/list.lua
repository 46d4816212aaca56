-- GET /api/v1/orders/?page_size=20 as staff: page 1 of every order, newest
-- first, each with its items. One fixed request, so wrk builds it once.
expected_status = 200
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

wrk.method = "GET"
wrk.path = "/api/v1/orders/?page_size=20"
wrk.headers["Authorization"] = "Bearer " .. bench.staff_token
