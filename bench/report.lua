-- wrk script fragment: at the end of a run, print one machine-readable line
--
--   BENCH requests=N duration_us=D bytes=B rps=R p50_us=.. p99_us=.. p999_us=..
--         max_us=.. wrk_p99_us=.. connect=.. read=.. write=.. status=.. timeout=..
--
-- for run-hello.sh to parse. Used alone (`-s report.lua`, plain keep-alive)
-- or loaded by pipeline.lua.
--
-- Why the percentiles are recomputed here: before printing, wrk applies a
-- coordinated-omission "correction" (stats_correct in wrk's stats.c) with an
-- expected interval of  duration / (responses / connections). For every
-- latency sample n >= 2*interval it adds synthetic samples at n-interval,
-- n-2*interval, ... down to the interval. Two problems:
--   * with pipelining, wrk records ONE latency sample per batch (when the last
--     of the 16 responses arrives) but counts 16 responses, so the interval is
--     16x too small and the synthetic samples swamp the real ones;
--   * synthetic samples below the real minimum are counted in the total but
--     never visited by the percentile walk, so wrk prints 0.00us for p75..p99.
-- The correction is exactly invertible: for a latency value m > interval the
-- corrected count is D'(m) = sum_{k>=0} D(m + k*interval), hence
--   D(m) = D'(m) - D'(m + interval).
-- The p50/p99/p999 printed here are of the recorded (uncorrected) samples:
-- per request for keep-alive, per 16-request batch for pipelining.
-- wrk_p99_us is what wrk itself computes (after its correction), for reference.

local function env_number(name, default)
   return tonumber(os.getenv(name) or "") or default
end

-- Percentile the way wrk computes it: rank = round(p/100 * count + 0.5).
local function percentile(values, counts, total, p)
   local rank = math.floor((p / 100.0) * total + 0.5 + 0.5)
   local seen = 0
   for i = 1, #values do
      seen = seen + counts[i]
      if seen >= rank then return values[i] end
   end
   return 0
end

function done(summary, latency, requests)
   local e = summary.errors
   local out = string.format(
      "BENCH requests=%d duration_us=%d bytes=%d rps=%.2f connect=%d read=%d write=%d status=%d timeout=%d",
      summary.requests, summary.duration, summary.bytes,
      summary.requests / (summary.duration / 1e6),
      e.connect, e.read, e.write, e.status, e.timeout)

   -- The interval wrk used, recomputed with its integer arithmetic.
   local conns = env_number("WRK_CONNECTIONS", nil)
   local n = #latency
   local p50, p99, p999, ok = "nan", "nan", "nan", "no-connections-env"
   -- latency(i) walks wrk's histogram from its minimum each call, so bound
   -- the work: skip (report nan) if the distribution is absurdly wide.
   if conns and n > 0 and n * (latency.max - latency.min + 1) < 4e9 then
      local per_conn = math.floor(summary.requests / conns)
      local interval = per_conn > 0 and math.floor(summary.duration / per_conn) or math.huge
      local values, corrected, index = {}, {}, {}
      for i = 1, n do
         local v, c = latency(i)
         values[i], corrected[i], index[v] = v, c, i
      end
      local counts, total = {}, 0
      ok = "ok"
      for i = 1, n do
         local v, c = values[i], corrected[i]
         if v > interval then
            local j = index[v + interval]
            if j then c = c - corrected[j] end
         end
         if c < 0 then ok = "negative-count"; c = 0 end
         counts[i] = c
         total = total + c
      end
      p50 = percentile(values, counts, total, 50)
      p99 = percentile(values, counts, total, 99)
      p999 = percentile(values, counts, total, 99.9)
      out = out .. string.format(" samples=%d interval_us=%s", total, tostring(interval))
   end
   out = out .. string.format(
      " p50_us=%s p99_us=%s p999_us=%s max_us=%d wrk_p99_us=%d uncorrect=%s",
      tostring(p50), tostring(p99), tostring(p999), latency.max,
      latency:percentile(99), ok)
   io.write(out, "\n")
end
