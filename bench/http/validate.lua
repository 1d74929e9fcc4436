-- POST /v1/sessions/validate, round-robin over prepared session tokens.
-- Each wrk thread starts at its own offset; a validation inside the touch
-- interval is a read, as in production.
local tokens = {}
for line in io.lines(os.getenv("TOKENS")) do tokens[#tokens + 1] = line end
local api_key = os.getenv("API_KEY")
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
  return wrk.format("POST", "/v1/sessions/validate",
    {["Authorization"] = "Bearer " .. api_key, ["Content-Type"] = "application/json"},
    '{"session_token":"' .. t .. '"}')
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx: %d\n", summary.errors.status))
end
