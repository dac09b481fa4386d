-- sliding_log: the Lua twin of algorithms.SlidingLog.
--
-- The log is a Redis list, oldest entry first, one element per admitted
-- request: "<timestamp>:<cost>:<total>", where total is the running sum of
-- the costs up to and including this entry. The units in the log are then
-- last.total - first.total + first.cost, read from its two ends, so no
-- separate counter is kept (algorithms.State keeps one in V[0]).
--
-- A transition reads the list lazily and never writes. Its state is a view:
-- the stored elements lo..hi plus entries appended after them (app). The
-- driver writes a committed view back with LTRIM and RPUSH, so a decision
-- reads only the entries leaving the window, the newest entry, and on a
-- denial the entries that must leave before a retry.

local LOG_CHUNK = 32

-- log_load returns the view of the list stored at key.
local function log_load(key)
  local st = {key = key, n = redis.call('LLEN', key), cache = {}}
  return {st = st, lo = 1, hi = st.n, app = {}}
end

local function log_decode(raw)
  local at, n, total = string.match(raw, '^(%d+):(%d+):(%d+)$')
  if not total then error('malformed sliding_log entry') end
  return {tonumber(at), tonumber(n), tonumber(total)}
end

-- log_stored returns stored entry j (1-based), reading it and the entries
-- after it with one LRANGE on a miss.
local function log_stored(st, j)
  local e = st.cache[j]
  if e == nil then
    local raw = redis.call('LRANGE', st.key, j - 1, j + LOG_CHUNK - 2)
    for i = 1, #raw do st.cache[j + i - 1] = log_decode(raw[i]) end
    e = st.cache[j]
  end
  return e
end

local function log_stored_len(v) return mmax(v.hi - v.lo + 1, 0) end
local function log_len(v) return log_stored_len(v) + #v.app end

-- log_get returns entry i (1-based) of the view: {timestamp, cost, total}.
local function log_get(v, i)
  local stored = log_stored_len(v)
  if i <= stored then return log_stored(v.st, v.lo + i - 1) end
  return v.app[i - stored]
end

local function log_copy(v)
  local app = {}
  for i = 1, #v.app do app[i] = v.app[i] end
  return {st = v.st, lo = v.lo, hi = v.hi, app = app}
end

local function log_used(v)
  local n = log_len(v)
  if n == 0 then return 0 end
  local first, last = log_get(v, 1), log_get(v, n)
  return last[3] - first[3] + first[2]
end

-- log_prune drops the entries at or before cutoff (pruneLog).
local function log_prune(v, cutoff)
  while log_len(v) > 0 and log_get(v, 1)[1] <= cutoff do
    if v.lo <= v.hi then v.lo = v.lo + 1 else table.remove(v.app, 1) end
  end
end

-- log_pop removes the newest entry.
local function log_pop(v)
  if #v.app > 0 then v.app[#v.app] = nil else v.hi = v.hi - 1 end
end

-- log_drop_newest removes the newest r units (dropNewest). An entry only
-- partly removed is replaced by an appended copy with the rest.
local function log_drop_newest(v, r)
  while r > 0 and log_len(v) > 0 do
    local last = log_get(v, log_len(v))
    log_pop(v)
    if last[2] > r then
      v.app[#v.app + 1] = {last[1], last[2] - r, last[3] - r}
      return
    end
    r = r - last[2]
  end
end

-- log_append appends an entry of cost n at time at (appendEntry).
local function log_append(v, at, n)
  local len, total = log_len(v), n
  if len > 0 then total = log_get(v, len)[3] + n end
  v.app[#v.app + 1] = {at, n, total}
end

-- log_retry is logRetry: the microseconds until excess units have left.
local function log_retry(v, excess, now, w)
  for i = 1, log_len(v) do
    local e = log_get(v, i)
    excess = excess - e[2]
    if excess <= 0 then return e[1] + w - now end
  end
  return w
end

-- log_reset is logReset: the microseconds until the newest entry has left.
local function log_reset(v, now, w)
  local n = log_len(v)
  if n == 0 then return 0 end
  return log_get(v, n)[1] + w - now
end

-- log_store writes a committed view back and sets its TTL.
local function log_store(v, ttl)
  local st = v.st
  if log_len(v) == 0 then
    redis.call('DEL', st.key)
    return
  end
  if v.lo > v.hi then
    if st.n > 0 then redis.call('DEL', st.key) end
  elseif v.lo > 1 or v.hi < st.n then
    redis.call('LTRIM', st.key, v.lo - 1, v.hi - 1)
  end
  if #v.app > 0 then
    local enc = {}
    for i, e in ipairs(v.app) do enc[i] = string.format('%d:%d:%d', e[1], e[2], e[3]) end
    redis.call('RPUSH', st.key, unpack(enc))
  end
  redis.call('PEXPIRE', st.key, ttl)
end

ALG[3] = function(s, t, limit, w, burst, cost)
  local v = log_copy(s)
  log_prune(v, t - w)
  local used = log_used(v)

  if cost > limit then
    return s, deny(limit - used, w, log_reset(v, t, w))
  elseif cost < 0 then
    log_drop_newest(v, -cost)
    used = log_used(v)
  elseif cost == 0 then
    -- nothing to charge
  elseif cost > limit - used then
    local retry = log_retry(v, used + cost - limit, t, w)
    return s, deny(limit - used, retry, log_reset(v, t, w))
  else
    -- Keep the log sorted even if the clock steps back.
    local at, n = t, log_len(v)
    if n > 0 then at = mmax(at, log_get(v, n)[1]) end
    log_append(v, at, cost)
    used = used + cost
  end
  if used <= 0 then
    return {st = s.st, lo = 1, hi = 0, app = {}}, allow(limit, 0)
  end
  return v, allow(limit - used, log_reset(v, t, w))
end
