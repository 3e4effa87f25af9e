-- wrk_mix.lua -- drive cowlab with a fixed mix of the workload's routes and
-- stop after a fixed number of responses; print machine-readable figures.
--
-- Usage: wrk -t T -c C -d LIMIT -s wrk_mix.lua URL -- TOTAL [PATHS] [T]
--   TOTAL  responses to collect over all threads (0 = until -d runs out);
--          thread i stops itself (wrk.thread:stop()) after its share.
--   PATHS  comma-separated routes cycled in order
--          (default "/,/api/items,/api/user,/static").
-- The done() hook prints one line "WRK_RESULT {json}" with requests, rps,
-- latency percentiles in ms and error counts.  wrk is closed-loop: it does
-- not correct coordinated omission.

local ok_ffi, ffi = pcall(require, "ffi")
local clock = nil
if ok_ffi then
    ffi.cdef [[
        typedef struct { long tv_sec; long tv_nsec; } cowlab_timespec;
        int clock_gettime(int clk, cowlab_timespec *ts);
    ]]
    local ts = ffi.new("cowlab_timespec")
    clock = function()         -- CLOCK_MONOTONIC, seconds
        ffi.C.clock_gettime(1, ts)
        return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
    end
end

local threads = {}
local next_id = 0

function setup(thread)
    thread:set("id", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

local paths = { "/", "/api/items", "/api/user", "/static" }
local limit = 0
local seen = 0
local i = 0

local function split(s)
    local t = {}
    for p in string.gmatch(s, "[^,]+") do
        table.insert(t, p)
    end
    return t
end

function init(args)
    local total = tonumber(args[1] or "0") or 0
    local nthreads = tonumber(args[3] or "1") or 1
    if args[2] and args[2] ~= "" then
        paths = split(args[2])
    end
    if total > 0 then
        limit = math.floor(total / nthreads)
        if id < total % nthreads then
            limit = limit + 1
        end
    end
    -- start each thread at a different route so the mix is even
    i = id % #paths
end

local t_first, t_last = 0, 0

function request()
    if t_first == 0 and clock then
        t_first = clock()
        wrk.thread:set("t_first", t_first)
    end
    i = i % #paths + 1
    return wrk.format("GET", paths[i])
end

function response(status, headers, body)
    seen = seen + 1
    if limit > 0 and seen == limit then
        if clock then
            wrk.thread:set("t_last", clock())
        end
        -- wrk's main thread sleeps for -d whatever its threads do: tell
        -- the runner, which interrupts wrk (SIGINT) once all are done.
        io.write(string.format("WRK_THREAD_DONE %d\n", id))
        io.stdout:flush()
        wrk.thread:stop()
    end
end

function done(summary, latency, requests)
    -- Throughput over the span the threads were sending (first request to
    -- last counted response), not wrk's -d: its main thread keeps sleeping
    -- after the threads stop, until the runner interrupts it.
    local secs = summary.duration / 1e6
    local t0, t1 = nil, nil
    for _, t in ipairs(threads) do
        local a, b = t:get("t_first"), t:get("t_last")
        if a and a > 0 and (t0 == nil or a < t0) then t0 = a end
        if b and b > 0 and (t1 == nil or b > t1) then t1 = b end
    end
    local span = secs
    if t0 and t1 and t1 > t0 then
        span = t1 - t0
    end
    local e = summary.errors
    local function ms(p)
        return latency:percentile(p) / 1000.0
    end
    io.write(string.format(
        'WRK_RESULT {"requests": %d, "span_s": %.6f, "wrk_duration_s": %.6f, ' ..
        '"rps": %.2f, "bytes": %d, "latency_mean_ms": %.4f, ' ..
        '"latency_stdev_ms": %.4f, "latency_max_ms": %.4f, "p50_ms": %.4f, ' ..
        '"p90_ms": %.4f, "p99_ms": %.4f, "p999_ms": %.4f, ' ..
        '"errors_connect": %d, "errors_read": %d, "errors_write": %d, ' ..
        '"errors_status": %d, "errors_timeout": %d}\n',
        summary.requests, span, secs,
        span > 0 and summary.requests / span or 0, summary.bytes,
        latency.mean / 1000.0, latency.stdev / 1000.0, latency.max / 1000.0,
        ms(50), ms(90), ms(99), ms(99.9), e.connect, e.read, e.write,
        e.status, e.timeout))
    io.stdout:flush()
end
