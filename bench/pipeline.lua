-- wrk script: HTTP/1.1 pipelining, depth 16 (override: env PIPELINE_DEPTH).
--
-- Every wrk "request" is the same GET written 16 times back to back in one
-- write. wrk's counting (src/wrk.c, src/script.c): at start-up it parses the
-- string that request() returns and counts the HTTP requests in it (here 16);
-- it then counts every *response* it reads as one request, and writes the
-- next batch on a connection only after all 16 responses came back. So the
-- "N requests" and "Requests/sec" that wrk prints are already HTTP requests:
-- do NOT multiply them by 16. (Check: bytes read / requests = size of one
-- response, about 115 bytes for hyper's hello.)
--
-- Latency, on the other hand, is recorded once per batch: from the write of
-- the batch to its 16th response. See report.lua for why its percentiles are
-- recomputed there.

local depth = tonumber(os.getenv("PIPELINE_DEPTH") or "16")
local batch

function init(args)
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format(nil, wrk.path)
   end
   batch = table.concat(r)
end

function request()
   return batch
end

-- Load done() from report.lua next to this file.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")
