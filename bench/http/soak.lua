-- The mixed traffic of scripts/soak.sh, in every 20 requests: 16 POST
-- /v1/sessions/validate (cookie sessions, round-robin), 2 GET
-- /.well-known/jwks.json, 1 POST /v1/tokens/refresh, 1 GET
-- /v1/authz/forward-auth (as forward_auth.lua). Each thread chains its own
-- refresh tokens: it starts with a slice of the prepared ones and takes the
-- new "refresh_token" of every answer (a token is presented once; with
-- none at hand it validates instead); done() writes the unused ones back
-- to the REFRESH file for the next run. DELAY_MS (fractional) paces every
-- connection; unset, no pause. Non-2xx answers are counted.
local cookies = {}
for line in io.lines(os.getenv("TOKENS")) do cookies[#cookies + 1] = line end
local api_key = os.getenv("API_KEY")
local host = os.getenv("HOST")
local delay_ms = tonumber(os.getenv("DELAY_MS") or "")
local threads, thread_no = {}, 0
local counter, owed = 0, 0
offset, bad = 0, 0  -- globals: thread:set and thread:get reach only those
refresh = {}  -- this thread's unused refresh tokens (a global, for done())

function setup(thread)
  thread:set("offset", thread_no)
  thread_no = thread_no + 1
  threads[#threads + 1] = thread
end

function init(args)
  local i, step = 0, tonumber(os.getenv("THREADS"))
  for line in io.lines(os.getenv("REFRESH")) do
    if i % step == offset then refresh[#refresh + 1] = line end
    i = i + 1
  end
end

function request()
  counter = counter + 1
  local slot = counter % 20
  local t = cookies[((counter + offset * 7919) % #cookies) + 1]
  if slot == 0 and #refresh > 0 then
    return wrk.format("POST", "/v1/tokens/refresh", {["Content-Type"] = "application/json"},
      '{"refresh_token":"' .. table.remove(refresh, 1) .. '"}')
  elseif slot == 1 then
    return wrk.format("GET", "/v1/authz/forward-auth",
      {["Cookie"] = "__Host-tessera_session=" .. t, ["X-Forwarded-Method"] = "GET",
       ["X-Forwarded-Proto"] = "http", ["X-Forwarded-Host"] = host,
       ["X-Forwarded-Uri"] = "/dashboard?page=" .. counter, ["Accept"] = "application/json"})
  elseif slot == 2 or slot == 3 then
    return wrk.format("GET", "/.well-known/jwks.json")
  end
  return wrk.format("POST", "/v1/sessions/validate",
    {["Authorization"] = "Bearer " .. api_key, ["Content-Type"] = "application/json"},
    '{"session_token":"' .. t .. '"}')
end

function response(status, headers, body)
  if status < 200 or status > 299 then bad = bad + 1 end
  local next_token = body:match('"refresh_token":%s*"([^"]+)"')
  if next_token then refresh[#refresh + 1] = next_token end
end

if delay_ms then
  -- wrk takes whole milliseconds: carry the fraction over to the next pause.
  function delay()
    owed = owed + delay_ms
    local ms = math.floor(owed)
    owed = owed - ms
    return ms
  end
end

function done(summary, latency, requests)
  local total, out = 0, io.open(os.getenv("REFRESH"), "w")
  for _, thread in ipairs(threads) do
    total = total + thread:get("bad")
    for _, token in ipairs(thread:get("refresh")) do out:write(token, "\n") end
  end
  out:close()
  io.write(string.format("non-2xx: %d\n", total))
end
