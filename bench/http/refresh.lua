-- POST /v1/tokens/refresh, each prepared refresh token presented exactly
-- once (rule 1: a real rotation every time). Threads take disjoint slices
-- (thread i: tokens i, i+T, i+2T, ...); a thread that runs out repeats the
-- last one, which would then be a replay: the run is sized so that it does
-- not happen, and non-2xx answers are reported.
local tokens = {}
for line in io.lines(os.getenv("TOKENS")) do tokens[#tokens + 1] = line end
local threads = tonumber(os.getenv("THREADS"))
local thread_no = 0
local index = 0
mine = 0  -- a global: thread:set() writes globals, never a chunk's locals

function setup(thread)
  thread:set("mine", thread_no)
  thread_no = thread_no + 1
end

function request()
  local i = mine + index * threads + 1
  index = index + 1
  if i > #tokens then i = #tokens end
  return wrk.format("POST", "/v1/tokens/refresh", {["Content-Type"] = "application/json"},
    '{"refresh_token":"' .. tokens[i] .. '"}')
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx: %d\n", summary.errors.status))
end
