-- concurrency: the Lua twin of algorithms.Concurrency. State: {in flight,
-- last change}. The driver passes the lease as the window.
local CONCURRENCY_RETRY = 1000000 -- algorithms.concurrencyRetry, one second

ALG[6] = function(s, t, limit, lease, burst, cost)
  local in_flight, changed = s[1], s[2]
  if in_flight <= 0 or t - changed >= lease then in_flight, changed = 0, t end
  local expires = changed + lease - t
  local function reset()
    if in_flight == 0 then return 0 end
    return expires
  end

  if cost > limit then
    return s, deny(limit - in_flight, lease, reset())
  elseif cost < 0 then
    in_flight = mmax(in_flight - (-cost), 0)
  elseif cost == 0 then
    -- Looking does not renew the lease.
    if in_flight == 0 then return ZERO, allow(limit, 0) end
    return s, allow(limit - in_flight, expires)
  elseif cost > limit - in_flight then
    return s, deny(limit - in_flight, mmin(CONCURRENCY_RETRY, expires), reset())
  else
    in_flight = in_flight + cost
  end
  if in_flight == 0 then return ZERO, allow(limit, 0) end
  return {in_flight, t, 0}, allow(limit - in_flight, lease)
end
