-- Take the lease if nobody holds it, under a fencing token larger than any before.
-- KEYS[1] lease, KEYS[2] fence counter
-- ARGV[1] node id, ARGV[2] process nonce, ARGV[3] ttl in ms
-- Returns {1, value} when this process holds the lease now, {0, holder value} otherwise.
local current = redis.call('GET', KEYS[1])
if current then
  -- Our own lease is still there (e.g. a renewal reply was lost): keep it, same token.
  local nonce = string.match(current, '^%d+ (%S+) ')
  if nonce == ARGV[2] then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return {1, current}
  end
  return {0, current}
end
-- The token never falls below Redis TIME in ms, so it keeps growing even when Redis lost
-- the counter (restart without data, or a promoted replica that missed writes).
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local token = math.max(last + 1, now_ms)
local token_text = string.format('%d', token)
redis.call('SET', KEYS[2], token_text)
local value = token_text .. ' ' .. ARGV[2] .. ' ' .. ARGV[1]
redis.call('SET', KEYS[1], value, 'PX', ARGV[3])
return {1, value}
