-- Add, replace or remove one runtime job, moving the version in the same step.
-- KEYS[1] runtime jobs hash, KEYS[2] runtime version, KEYS[3] watermarks hash,
-- KEYS[4] where a version key that is not a counter is moved (kept for inspection).
-- ARGV[1] job name, ARGV[2] the new JSON table ('' removes the job),
-- ARGV[3] what must be there now: 'any', 'absent', or 'equal' (to ARGV[4]), ARGV[4] that value.
-- A job new to the hash gets Redis TIME as its watermark (over any old one), so it starts
-- from the moment it was added, whenever a leader first sees it; a replaced or edited job
-- keeps its own. A version that is missing or not a counter starts again at TIME in
-- microseconds, a value no leader has seen before.
-- Types are checked before anything is written: a command failing halfway would change the
-- job without moving the version.
-- Returns {1, was there (0/1), version} when done; {0, was there} when the job is not as
-- expected (absent for a removal); {2, key, type} when the hash holds the wrong type.
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'none' and kind ~= 'hash' then
  return {2, KEYS[1], kind}
end
local current = redis.call('HGET', KEYS[1], ARGV[1])
local existed = current and 1 or 0
local mode = ARGV[3]
if (mode == 'absent' and current) or (mode == 'equal' and current ~= ARGV[4]) then
  return {0, existed}
end
if ARGV[2] == '' then
  if not current then
    return {0, 0}
  end
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  local marks = redis.call('TYPE', KEYS[3])['ok']
  if not current and (marks == 'none' or marks == 'hash') then
    redis.call('HSET', KEYS[3], ARGV[1], redis.call('TIME')[1])
  end
end
local counter = redis.call('TYPE', KEYS[2])['ok']
if counter == 'string' and string.match(redis.call('GET', KEYS[2]), '^%d+$')
    and #redis.call('GET', KEYS[2]) < 19 then
  return {1, existed, redis.call('INCR', KEYS[2])}
end
if counter ~= 'none' then
  redis.call('RENAME', KEYS[2], KEYS[4])
end
local now = redis.call('TIME')
local fresh = now[1] .. string.format('%06d', tonumber(now[2]))
redis.call('SET', KEYS[2], fresh)
return {1, existed, fresh}
