-- wrk_rate.lua -- a paced load for the fleet experiment: the workload's
-- routes in a fixed mix at a set rate, with machine-readable figures.
--
-- Usage: wrk -t T -c C -d SECONDS -s wrk_rate.lua URL -- RATE [PATHS] [T]
--   RATE   requests per second over all threads (0 = as fast as the
--          connections go, wrk's closed loop).  Thread i sends its share
--          on a schedule: request k at start + k / (RATE / T), through
--          wrk's delay() hook, so the load is the same whatever the server
--          does, as long as C connections are enough to carry it.  A
--          thread that fell more than a second behind (every connection
--          busy) starts a new schedule instead of bursting to catch up.
--   PATHS  comma-separated routes cycled in order.
-- The done() hook prints "WRK_RESULT {json}": requests, rps, latency
-- percentiles in ms (wrk's own histogram: from writing a request to its
-- response, the pacing delay excluded) and error counts.  The fleet runner
-- runs wrk in consecutive slices of a few seconds, one result each, which
-- gives throughput and latency over time.

local ffi = require("ffi")
ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } cowlab_timespec;
    int clock_gettime(int clk, cowlab_timespec *ts);
]]
local ts = ffi.new("cowlab_timespec")
local function now()           -- CLOCK_MONOTONIC, seconds
    ffi.C.clock_gettime(1, ts)
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local threads = {}
local next_id = 0

function setup(thread)
    thread:set("id", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

local paths = { "/", "/api/items", "/api/user", "/static" }
local i = 0
local interval = 0             -- seconds between this thread's requests
local t0, k = nil, 0

function init(args)
    local rate = tonumber(args[1] or "0") or 0
    local nthreads = tonumber(args[3] or "1") or 1
    if args[2] and args[2] ~= "" then
        paths = {}
        for p in string.gmatch(args[2], "[^,]+") do
            table.insert(paths, p)
        end
    end
    if rate > 0 then
        interval = nthreads / rate
    end
    i = id % #paths
    wrk.thread:set("t_first", now())
end

function delay()
    if interval <= 0 then
        return 0
    end
    local t = now()
    if t0 == nil or t - (t0 + k * interval) > 1.0 then
        t0, k = t, 0           -- first request, or a second behind
    end
    local due = t0 + k * interval
    k = k + 1
    local ms = (due - t) * 1000
    return ms > 0 and math.floor(ms) or 0
end

function request()
    i = i % #paths + 1
    return wrk.format("GET", paths[i])
end

function done(summary, latency, requests)
    local secs = summary.duration / 1e6
    local e = summary.errors
    local function ms(p)
        return latency:percentile(p) / 1000.0
    end
    io.write(string.format(
        'WRK_RESULT {"requests": %d, "wrk_duration_s": %.6f, ' ..
        '"rps": %.2f, "latency_mean_ms": %.4f, "latency_max_ms": %.4f, ' ..
        '"p50_ms": %.4f, "p90_ms": %.4f, "p99_ms": %.4f, ' ..
        '"p999_ms": %.4f, "errors_connect": %d, "errors_read": %d, ' ..
        '"errors_write": %d, "errors_status": %d, "errors_timeout": %d}\n',
        summary.requests, secs, secs > 0 and summary.requests / secs or 0,
        latency.mean / 1000.0, latency.max / 1000.0, ms(50), ms(90), ms(99),
        ms(99.9), e.connect, e.read, e.write, e.status, e.timeout))
    io.stdout:flush()
end
