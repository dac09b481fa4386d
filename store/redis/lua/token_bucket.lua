-- token_bucket: the Lua twin of algorithms.TokenBucket. State: {base, anchor}.

-- tb_level is bucket.level: the tokens at the anchor, the anchor, and the
-- whole tokens available at now.
local function tb_level(s, now, cap, limit, w)
  local base, anchor = s[1], s[2]
  if anchor == 0 or base >= cap then return cap, now, cap end
  local elapsed = now - anchor
  if elapsed <= 0 then return base, anchor, mmax(base, 0) end
  local k = floor(elapsed / w)
  if k > 0 then
    if k >= ceil_div(cap - base, limit) then return cap, now, cap end
    base = base + k * limit
    anchor = anchor + k * w
    elapsed = elapsed - k * w
  end
  local tokens = base + mul_div(elapsed, limit, w)
  if tokens >= cap then return cap, now, cap end
  return base, anchor, tokens
end

ALG[2] = function(s, t, limit, w, burst, cost)
  local cap = burst
  local base, anchor, tokens = tb_level(s, t, cap, limit, w)
  -- untl is bucket.until: microseconds until the bucket holds target.
  local function untl(target)
    if target <= base then return 0 end
    return mmax(anchor + mul_div_ceil(target - base, w, limit) - t, 0)
  end

  if cost > cap then
    return s, deny(tokens, w, untl(cap))
  elseif cost < 0 then
    local refund = -cost
    if refund >= cap - tokens then return ZERO, allow(cap, 0) end
    base, tokens = base + refund, tokens + refund
  elseif cost > tokens then
    return s, deny(tokens, untl(cost), untl(cap))
  else
    base, tokens = base - cost, tokens - cost
  end
  if tokens >= cap then return ZERO, allow(tokens, 0) end
  return {base, anchor, 0}, allow(tokens, untl(cap))
end
