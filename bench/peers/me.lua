-- GET /me (or PATH), round-robin over prepared session cookies (COOKIES:
-- one "name=value" per line). Same shape as bench/http/validate.lua.
local cookies = {}
for line in io.lines(os.getenv("COOKIES")) do cookies[#cookies + 1] = line end
local path = os.getenv("PATH_ME") or "/me"
local counter = 0
offset = 0  -- a global: thread:set() writes globals, never a chunk's locals
local thread_no = 0

function setup(thread)
  thread:set("offset", thread_no * 7919)
  thread_no = thread_no + 1
end

function request()
  counter = counter + 1
  local c = cookies[((counter + offset) % #cookies) + 1]
  return wrk.format("GET", path, {["Cookie"] = c})
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx: %d\n", summary.errors.status))
end
