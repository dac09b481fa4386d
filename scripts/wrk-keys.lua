-- wrk script for scripts/bench-wrk.sh: every request carries an X-Key header,
-- cycling over BENCH_KEYS distinct values (default 100000). Each thread owns
-- its own slice of the key space, so together the threads touch every key
-- once they have sent BENCH_KEYS requests.
--
-- At the end it prints "keys_touched <n>": how many distinct keys were sent.

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function init(args)
   local keys = tonumber(os.getenv("BENCH_KEYS") or "100000")
   local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
   span = math.floor(keys / nthreads)
   base = id * span
   sent = 0
end

function request()
   wrk.headers["X-Key"] = tostring(base + sent % span)
   sent = sent + 1
   return wrk.format()
end

function done(summary, latency, requests)
   local touched = 0
   for _, thread in ipairs(threads) do
      touched = touched + math.min(thread:get("sent"), thread:get("span"))
   end
   io.write(string.format("keys_touched %d\n", touched))
end
