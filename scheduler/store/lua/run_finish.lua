-- Record how the attempt that holds a run claim ended, if it still holds it.
-- KEYS[1] the claim (Keys.run_claim)
-- ARGV[1] the attempt's nonce, ARGV[2] new state (retrying|done), ARGV[3] TTL in ms,
-- ARGV[4] the attempt's retries count, ARGV[5] worker name.
-- Returns 1 updated our claim, 2 wrote it afresh (ours had expired and nobody claimed since),
-- 3 left it alone: a later attempt (higher retries: our own retry) holds it already,
-- 0 left it alone: another delivery of the same attempt holds it (ours expired and was claimed
-- again, or the value is not ours to read).
local status = 2
local current = redis.call('GET', KEYS[1])
if current then
  local held, nonce = string.match(current, '^%a+ (%d+) %d+ (%S+) ')
  if nonce ~= ARGV[1] then
    if held and tonumber(held) > tonumber(ARGV[4]) then
      return 3
    end
    return 0
  end
  status = 1
end
local t = redis.call('TIME')
local now_ms = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
redis.call('SET', KEYS[1], table.concat({ARGV[2], ARGV[4], now_ms, ARGV[1], ARGV[5]}, ' '),
  'PX', ARGV[3])
return status
