-- fixed_window: the Lua twin of algorithms.FixedWindow. State: {start, count}.
ALG[4] = function(s, t, limit, w, burst, cost)
  local start, count = align_down(t, w), 0
  if s[1] >= start then start, count = s[1], s[2] end
  local ends = start + w - t
  local function reset()
    if count == 0 then return 0 end
    return ends
  end

  if cost > limit then
    return s, deny(limit - count, w, reset())
  elseif cost < 0 then
    count = mmax(count - (-cost), 0)
  elseif cost == 0 then
    -- nothing to charge
  elseif cost > limit - count then
    return s, deny(limit - count, ends, reset())
  else
    count = count + cost
  end
  if count == 0 then return ZERO, allow(limit, 0) end
  return {start, count, 0}, allow(limit - count, ends)
end
