-- sliding_window: the Lua twin of algorithms.SlidingWindow.
-- State: {start, current count, previous count}.

-- overlap_drop is algorithms.overlapDrop: the elapsed time from which
-- floor(prev * (w - e) / w) <= room.
local function overlap_drop(prev, room, w)
  local span = mul_div_ceil(room + 1, w, prev) - 1
  return mmax(w - span, 0)
end

-- sliding_retry is algorithms.slidingRetry: the first microsecond at which
-- the estimate is at most room.
local function sliding_retry(start, curr, prev, room, w)
  if curr > room then start, curr, prev = start + w, 0, curr end
  return start + overlap_drop(prev, room - curr, w)
end

ALG[5] = function(s, t, limit, w, burst, cost)
  local start, curr, prev = align_down(t, w), 0, 0
  if s[1] >= start then
    start, curr, prev = s[1], s[2], s[3]
  elseif s[1] == start - w then
    prev = s[2]
  end
  local elapsed = mmax(t - start, 0)
  local estimate = mul_div(prev, w - elapsed, w) + curr
  local function reset()
    if curr > 0 then return start + 2 * w - t end
    if prev > 0 then return start + w - t end
    return 0
  end

  if cost > limit then
    return s, deny(limit - estimate, w, reset())
  elseif cost < 0 then
    local refund = -cost
    local from_curr = mmin(refund, curr)
    curr, prev = curr - from_curr, mmax(prev - (refund - from_curr), 0)
    estimate = mul_div(prev, w - elapsed, w) + curr
  elseif cost == 0 then
    -- nothing to charge
  elseif cost > limit - estimate then
    local retry = sliding_retry(start, curr, prev, limit - cost, w) - t
    return s, deny(limit - estimate, retry, reset())
  else
    curr = curr + cost
    estimate = estimate + cost
  end
  if curr == 0 and prev == 0 then return ZERO, allow(limit, 0) end
  return {start, curr, prev}, allow(limit - estimate, reset())
end
