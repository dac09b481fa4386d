-- Shared helpers for the Lua twins of Ratewarden's algorithms. The Redis
-- store prepends this file to the algorithm files and the take driver, so
-- everything here is a local of one script.
--
-- Every value is an integer held in a Lua number (a double). The twins are
-- bit-identical to the Go transitions in algorithms/ while every product
-- stays below 2^53 - 2^50 and every timestamp plus span below 2^53: the Go
-- side refuses policies that could break that (precision.go). Under that
-- bound a product of integers is exact, and floor(a / b) of a correctly
-- rounded quotient is the true floor because a + b <= 2^53.

local floor, mmax, mmin = math.floor, math.max, math.min

-- quo is Go's a / b for b > 0: it truncates towards zero.
local function quo(a, b)
  if a >= 0 then return floor(a / b) end
  return -floor(-a / b)
end

-- ceil_div is ceil(a / b) for a >= 0 and b > 0 (algorithms.ceilDiv).
local function ceil_div(a, b)
  local q = floor(a / b)
  if a - q * b ~= 0 then q = q + 1 end
  return q
end

-- align_down is the largest multiple of w at or below t (Lua's % floors).
local function align_down(t, w)
  return t - t % w
end

-- mul_div is floor(a * b / c) for a, b >= 0 and c > 0.
local function mul_div(a, b, c)
  return floor(a * b / c)
end

-- mul_div_ceil is ceil(a * b / c) for a, b >= 0 and c > 0.
local function mul_div_ceil(a, b, c)
  return ceil_div(a * b, c)
end

-- A decision is {allowed (1 or 0), remaining, retry after, reset after},
-- the times in microseconds; Go fills in the limit. Like algorithms.allow
-- and algorithms.deny, remaining and times are clamped at zero.
local function allow(remaining, reset)
  return {1, mmax(remaining, 0), 0, mmax(reset, 0)}
end

local function deny(remaining, retry, reset)
  return {0, mmax(remaining, 0), mmax(retry, 0), mmax(reset, 0)}
end

-- ZERO is the idle state of every scalar algorithm. It is never modified.
local ZERO = {0, 0, 0}

-- unusable mirrors algorithms.unusable, for a policy whose limit is not
-- positive: it admits nothing and leaves the state alone.
local function unusable(s, w, cost)
  if cost <= 0 then return s, allow(0, 0) end
  return s, deny(0, w, 0)
end

-- ALG maps an algorithm id (see script.go) to its transition:
-- ALG[id](s, now, limit, window, burst, cost) -> next state, decision.
-- window is the policy's window in microseconds (at least 1), or the lease
-- for concurrency; burst is the effective burst. A transition never
-- modifies s, and a denied transition returns s itself.
local ALG = {}

-- scalar_load reads the state of a scalar algorithm (all but sliding_log),
-- stored as "v0:v1:v2"; a missing key is the idle state.
local function scalar_load(key)
  local raw = redis.call('GET', key)
  if not raw then return ZERO end
  local a, b, c = string.match(raw, '^(%-?%d+):(%-?%d+):(%-?%d+)$')
  if not c then error('malformed state') end
  return {tonumber(a), tonumber(b), tonumber(c)}
end

-- scalar_store writes a scalar state with its TTL in milliseconds.
local function scalar_store(key, s, ttl)
  redis.call('SET', key, string.format('%d:%d:%d', s[1], s[2], s[3]), 'PX', ttl)
end
