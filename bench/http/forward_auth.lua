-- GET /v1/authz/forward-auth as Traefik and Caddy ask it: the session cookie
-- and the original request in X-Forwarded-* headers (wrk's address is
-- 127.0.0.1, a trusted proxy in bench-http.sh), round-robin over prepared
-- cookie sessions. An allow is 200 with an empty body.
local tokens = {}
for line in io.lines(os.getenv("TOKENS")) do tokens[#tokens + 1] = line end
local host = os.getenv("HOST")
local cookie = os.getenv("COOKIE") or "__Host-tessera_session"  -- the default name
local counter = 0
offset = 0  -- a global: thread:set() writes globals, never a chunk's locals
local thread_no = 0

function setup(thread)
  thread:set("offset", thread_no * 7919)
  thread_no = thread_no + 1
end

function request()
  counter = counter + 1
  local t = tokens[((counter + offset) % #tokens) + 1]
  return wrk.format("GET", "/v1/authz/forward-auth",
    {["Cookie"] = cookie .. "=" .. t, ["X-Forwarded-Method"] = "GET",
     ["X-Forwarded-Proto"] = "http", ["X-Forwarded-Host"] = host,
     ["X-Forwarded-Uri"] = "/dashboard?page=" .. counter, ["Accept"] = "application/json"})
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx: %d\n", summary.errors.status))
end
