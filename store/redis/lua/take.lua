-- take decides every request of one store.Take call atomically.
--
-- KEYS[i] is request i's state key. ARGV[1] is the time in unix
-- microseconds, or '' to read the server's TIME (production never passes a
-- time; the conformance suite does). ARGV[2] is the shortest TTL to set, in
-- milliseconds. ARGV[3] is 1 for a dry run, which decides as usual but
-- writes nothing, 0 otherwise, or a batch of calls (see the end of this
-- file). Request i's arguments start at ARGV[4 + 6*(i-1)]:
-- algorithm id, limit, window in microseconds (at least 1), effective
-- burst, cost and flags (1 shadow, 2 peek, 4 concurrency with the default
-- lease).
--
-- The reply holds four integers per request: allowed (1 or 0), remaining,
-- retry after and reset after, both in microseconds. A request sees the
-- state that the charged requests before it in the call leave on its key.
-- If a request that is not a shadow is denied, nothing is written.
-- Otherwise each key charged by an allowed request that is not a peek is
-- written once, with its last state and a TTL of that request's reset
-- after (rounded up to milliseconds), or deleted when that is zero.

local SHADOW, PEEK, LEASE_FLAG = 1, 2, 4
local DEFAULT_LEASE = 3600000000 -- algorithms.DefaultLease
local LOG_ALG, CONCURRENCY_ALG = 3, 6
local MAX_NOW = 4503599627370496 -- 2^52 µs, in 2112: see precision.go

local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local tm = redis.call('TIME')
  now = tonumber(tm[1]) * 1000000 + tonumber(tm[2])
end
if not now or now <= 0 or now >= MAX_NOW then
  return redis.error_reply('ratewarden: time out of range')
end
local min_ttl = tonumber(ARGV[2])
local dry = ARGV[3] == '1'

-- decide runs request i on state s (loaded from its key when nil) and
-- returns its algorithm, flags, next state and decision, or nil when its
-- arguments are malformed.
local function decide(i, s)
  local a = 4 + 6 * (i - 1)
  local alg, limit, w = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local burst, cost, flags = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  local fn = ALG[alg]
  if not (fn and limit and w and burst and cost and flags) then return nil end
  if s == nil then
    if alg == LOG_ALG then s = log_load(KEYS[i]) else s = scalar_load(KEYS[i]) end
  end
  local nxt, d
  if limit <= 0 then
    nxt, d = unusable(s, w, cost)
  else
    if alg == CONCURRENCY_ALG and bit.band(flags, LEASE_FLAG) ~= 0 then w = DEFAULT_LEASE end
    nxt, d = fn(s, now, limit, w, burst, cost)
  end
  return alg, flags, s, nxt, d
end

-- commit writes the state s of algorithm alg to key, with a TTL of reset
-- (rounded up to milliseconds), or deletes key when reset is zero.
local function commit(key, alg, s, reset)
  if reset <= 0 then
    redis.call('DEL', key)
    return
  end
  local ttl = mmax(ceil_div(reset, 1000), min_ttl)
  if alg == LOG_ALG then log_store(s, ttl) else scalar_store(key, s, ttl) end
end

-- take_group decides requests first..last as one Take call: all of them or
-- none of them are charged (see the header). It appends four integers per
-- request to reply and returns nil, or returns an error message.
local function take_group(first, last, dry, reply)
  if first == last then
    -- One request, the common case: no bookkeeping of states across
    -- requests.
    local alg, flags, _, nxt, d = decide(first, nil)
    if not alg then return 'ratewarden: bad arguments for request ' .. first end
    if d[1] ~= 0 and bit.band(flags, PEEK) == 0 and not dry then commit(KEYS[first], alg, nxt, d[4]) end
    local n = #reply
    reply[n + 1], reply[n + 2], reply[n + 3], reply[n + 4] = d[1], d[2], d[3], d[4]
    return nil
  end
  local state, final, order = {}, {}, {}
  local blocked = false
  for i = first, last do
    local key = KEYS[i]
    local alg, flags, s, nxt, d = decide(i, state[key])
    if not alg then return 'ratewarden: bad arguments for request ' .. i end
    state[key] = s
    for j = 1, 4 do reply[#reply + 1] = d[j] end

    if d[1] == 0 then
      if bit.band(flags, SHADOW) == 0 then blocked = true end
    elseif bit.band(flags, PEEK) == 0 then
      state[key] = nxt
      if not final[key] then order[#order + 1] = key end
      final[key] = {alg, nxt, d[4]}
    end
  end

  if not blocked and not dry then
    for _, key in ipairs(order) do
      local f = final[key]
      commit(key, f[1], f[2], f[3])
    end
  end
  return nil
end

local reply = {}
local mode = ARGV[3]
if string.byte(mode, 1) ~= 98 then -- not 'b': one call, '1' for a dry run
  local err = take_group(1, #KEYS, mode == '1', reply)
  if err then return redis.error_reply(err) end
  return reply
end

-- A batch: several Take calls of one store merged into one script run, to
-- spare Redis a script call per decision. ARGV[3] is 'b' followed by each
-- call's number of requests ('b1,2,1'); the calls' keys and request
-- arguments follow one another. Each call is decided as if it ran on its
-- own, after the calls before it, and gets its own entry in the reply: its
-- four integers per request, or an error that fails that call alone (a
-- call decides everything before it writes, so a failed call wrote
-- nothing). A batch is never a dry run.
local sizes = {}
local total = 0
for n in string.gmatch(mode, '%d+') do
  n = tonumber(n)
  if n < 1 then return redis.error_reply('ratewarden: empty call in a batch') end
  sizes[#sizes + 1] = n
  total = total + n
end
if total ~= #KEYS then
  return redis.error_reply('ratewarden: batch sizes do not match the keys')
end
local first = 1
for c = 1, #sizes do
  local last = first + sizes[c] - 1
  local out = {}
  local ok, err = pcall(take_group, first, last, false, out)
  if not ok then
    -- A Redis error raised inside the call (a key of the wrong type).
    if type(err) == 'table' and err.err then err = err.err end
    reply[c] = redis.error_reply(tostring(err))
  elseif err then
    reply[c] = redis.error_reply(err)
  else
    reply[c] = out
  end
  first = last + 1
end
return reply
