-- Take the lease if nobody holds it, under a fencing token larger than any before.
-- KEYS[1] lease, KEYS[2] fence counter
-- ARGV[1] node id, ARGV[2] process nonce, ARGV[3] ttl in ms,
-- ARGV[4] the largest token this process has seen ('0' if none): a floor when the fence
-- cannot tell which tokens were handed out.
-- A lease value is "<token> <nonce> <node id>", the token an integer in [0, 2^53 - 1].
-- Returns
--   {1, value, fence_type, fence_sample} when this process holds the lease now. fence_type
--     is '' unless the fence held something that is not a token (then its TYPE, and for a
--     string its first 64 bytes); it has been rewritten as the new token either way.
--   {0, value} when another process holds it.
--   {2, what, sample, pttl, set_ms} when the lease key holds something that is not a live
--     lease: `what` is 'lease' (a lease value with no TTL), 'string' (not a lease value) or
--     the key's TYPE; sample is a string's first 64 bytes; pttl is the key's PTTL as found;
--     set_ms > 0 when this call gave it a TTL of that many ms. It is left in place until it
--     expires, then taken as usual: a value we cannot read may still be renewed by a node we
--     do not understand, and nothing here may take a lease that someone else could renew.

-- Lua numbers are doubles: above 2^53 a token + 1 is not exact, so no token goes beyond.
local MAX_TOKEN = 9007199254740991
local SAMPLE_BYTES = 64
local ttl = tonumber(ARGV[3])

-- The token and nonce of a lease value, or nil when `text` is not one.
local function parse(text)
  local token, nonce = string.match(text, '^(%d+) (%S+) .+$')
  if not token or #token > 16 or tonumber(token) > MAX_TOKEN then
    return nil, nil
  end
  return tonumber(token), nonce
end

local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'none' then
  local current, token, nonce = nil, nil, nil
  if kind == 'string' then
    current = redis.call('GET', KEYS[1])
    token, nonce = parse(current)
  end
  if nonce == ARGV[2] then
    -- Our own lease is still there (e.g. a renewal reply was lost): keep it, same token.
    redis.call('PEXPIRE', KEYS[1], ttl)
    return {1, current, '', ''}
  end
  local left = redis.call('PTTL', KEYS[1])
  if token and left >= 0 then
    return {0, current}
  end
  -- A lease value keeps a longer TTL than ours (its node may run with a longer lease_ttl);
  -- anything else gets at most one lease TTL, since nothing of ours will ever renew it.
  local set_ms = 0
  if left < 0 or (not token and left > ttl) then
    redis.call('PEXPIRE', KEYS[1], ttl)
    set_ms = ttl
  end
  local what, sample = kind, ''
  if current then
    sample = string.sub(current, 1, SAMPLE_BYTES)
    what = token and 'lease' or 'string'
  end
  return {2, what, sample, left, set_ms}
end

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last = nil
local fence_type, fence_sample = '', ''
local fence_kind = redis.call('TYPE', KEYS[2])['ok']
if fence_kind == 'string' then
  local text = redis.call('GET', KEYS[2])
  local number = tonumber(text)
  if string.match(text, '^%d+$') and #text <= 16 and number < MAX_TOKEN
    and string.format('%d', number) == text then
    last = number
  else
    fence_type, fence_sample = 'string', string.sub(text, 1, SAMPLE_BYTES)
    -- What still reads as a token we could have handed out is kept as a lower bound.
    if number and number >= 0 and number < MAX_TOKEN then
      last = math.floor(number)
    end
  end
elseif fence_kind ~= 'none' then
  fence_type = fence_kind
end
local token
if last and fence_type == '' then
  token = math.max(last + 1, now_ms)
else
  -- The fence cannot vouch for the tokens handed out: a token taken in this very millisecond
  -- may equal now_ms, so go one above it, and above anything else we know of.
  token = math.max(last or 0, now_ms) + 1
end
local floor = tonumber(ARGV[4])
if floor and floor >= token and floor < MAX_TOKEN then
  token = floor + 1
end
local token_text = string.format('%d', token)
redis.call('SET', KEYS[2], token_text)
local value = token_text .. ' ' .. ARGV[2] .. ' ' .. ARGV[1]
redis.call('SET', KEYS[1], value, 'PX', ttl)
return {1, value, fence_type, fence_sample}
