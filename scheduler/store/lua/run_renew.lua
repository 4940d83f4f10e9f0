-- Keep the "started" claim of a running attempt alive: its worker calls this every TTL/3 for
-- as long as the task body runs, so the TTL can be short and a dead worker's claim lapses soon.
-- KEYS[1] the claim (Keys.run_claim)
-- ARGV[1] the attempt's nonce, ARGV[2] TTL in ms, ARGV[3] the attempt's retries count,
-- ARGV[4] worker name.
-- Returns 1 renewed: our claim, still started, has a fresh TTL (nothing else changes),
-- 2 written afresh as started: ours had expired (or Redis lost it) and nobody claimed since,
-- 3 left alone: ours, but no longer started (finished: a renewal must not shorten that TTL),
-- 4 left alone: a later attempt (higher retries: our own retry) holds it,
-- 0 left alone: another delivery holds it (ours expired and was claimed again, or the value is
-- not one this package wrote).
local current = redis.call('GET', KEYS[1])
if current then
  local state, held, nonce = string.match(current, '^(%a+) (%d+) %d+ (%S+) ')
  if nonce == ARGV[1] then
    if state ~= 'started' then
      return 3
    end
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
  end
  if held and tonumber(held) > tonumber(ARGV[3]) then
    return 4
  end
  return 0
end
local t = redis.call('TIME')
local now_ms = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
redis.call('SET', KEYS[1], table.concat({'started', ARGV[3], now_ms, ARGV[1], ARGV[4]}, ' '),
  'PX', ARGV[2])
return 2
