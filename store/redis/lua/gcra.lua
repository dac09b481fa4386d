-- gcra: the Lua twin of algorithms.GCRA. State: {tat}.
ALG[1] = function(s, t, limit, w, burst, cost)
  local interval = mmax(ceil_div(w, limit), 1)
  local tolerance = burst * interval
  local tat = mmax(s[1], t)
  local function remaining(at) return quo(tolerance - (at - t), interval) end

  if cost > burst then
    return s, deny(remaining(tat), w, tat - t)
  elseif cost < 0 then
    -- A huge give-back makes the product inexact, but still past tat.
    tat = mmax(t, tat - (-cost) * interval)
  else
    local nxt = tat + cost * interval
    if nxt - t > tolerance then
      return s, deny(remaining(tat), nxt - tolerance - t, tat - t)
    end
    tat = nxt
  end
  if tat <= t then return ZERO, allow(remaining(t), 0) end
  return {tat, 0, 0}, allow(remaining(tat), tat - t)
end
