-- gcra: the Lua twin of algorithms.GCRA. State: {tat}.

-- gcra_remaining is the whole requests left when the bucket is full at tat.
local function gcra_remaining(tolerance, tat, t, interval)
  return quo(tolerance - (tat - t), interval)
end

ALG[1] = function(s, t, limit, w, burst, cost)
  local interval = mmax(ceil_div(w, limit), 1)
  local tolerance = burst * interval
  local tat = mmax(s[1], t)

  if cost > burst then
    return s, deny(gcra_remaining(tolerance, tat, t, interval), w, tat - t)
  elseif cost < 0 then
    -- A huge give-back makes the product inexact, but still past tat.
    tat = mmax(t, tat - (-cost) * interval)
  else
    local nxt = tat + cost * interval
    if nxt - t > tolerance then
      return s, deny(gcra_remaining(tolerance, tat, t, interval), nxt - tolerance - t, tat - t)
    end
    tat = nxt
  end
  if tat <= t then return ZERO, allow(gcra_remaining(tolerance, t, t, interval), 0) end
  return {tat, 0, 0}, allow(gcra_remaining(tolerance, tat, t, interval), tat - t)
end
