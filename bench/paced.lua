-- paced.lua: the peer's post.lua (same bodies, same BENCH line), sending at a set rate.
--
-- BENCH_RATE is the requests per second across every wrk thread (BENCH_THREADS of them). Each
-- thread keeps a schedule of send slots; a connection ready to send takes the next slot and
-- waits for it (wrk's delay()). When the target falls behind, slots are not made up later in a
-- burst: latency is counted from each request's send, and the achieved rate shows the shortfall.
dofile(os.getenv("BENCH_POST_LUA"))

local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local now_spec = ffi.new("bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, now_spec)
  return tonumber(now_spec.tv_sec) * 1000 + tonumber(now_spec.tv_nsec) / 1e6
end

local rate = tonumber(os.getenv("BENCH_RATE") or "1000")
local threads_count = tonumber(os.getenv("BENCH_THREADS") or "1")
local interval_ms = 1000 * threads_count / rate
local next_slot = nil

function delay()
  local now = now_ms()
  if next_slot == nil or next_slot < now - interval_ms then
    next_slot = now
  end
  next_slot = next_slot + interval_ms
  return math.max(0, math.floor(next_slot - now))
end
