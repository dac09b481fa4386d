-- wrk script for scripts/bench-wrk.sh: every request carries an X-Key header,
-- cycling over BENCH_KEYS distinct values (default 100000). Each thread owns
-- its own slice of the key space, so together the threads touch every key
-- once they have sent BENCH_KEYS requests.
--
-- BENCH_KEY_START (default 0) continues a previous run: each thread starts as
-- if it had already sent that many requests.
--
-- At the end it prints "keys_touched <n>", how many distinct keys have been
-- sent (this run and the ones it continues), and "sent_min <n>", the value of
-- BENCH_KEY_START that continues this run.

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
   sent = tonumber(os.getenv("BENCH_KEY_START") or "0")
end

function request()
   wrk.headers["X-Key"] = tostring(base + sent % span)
   sent = sent + 1
   return wrk.format()
end

function done(summary, latency, requests)
   local touched, sent_min = 0, nil
   for _, thread in ipairs(threads) do
      local sent = thread:get("sent")
      touched = touched + math.min(sent, thread:get("span"))
      if sent_min == nil or sent < sent_min then
         sent_min = sent
      end
   end
   io.write(string.format("keys_touched %d\nsent_min %d\n", touched, sent_min or 0))
end
